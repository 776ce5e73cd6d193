"""Signing keys from the operator's identity provider (a JWKS endpoint).

Keycloak, Entra ID and Auth0 publish their token-signing public keys as a
JSON Web Key Set and rotate them. This cache fetches that set with aiohttp
(never blocking the event loop; bounded by ``timeout``), parses it with
PyJWT's ``PyJWKSet`` and answers "which key has this ``kid``":

- A known ``kid`` is answered from the cache. Once the set is older than
  ``max_age`` a refresh starts in the background; the cached key keeps
  working meanwhile, and keeps working while the provider is unreachable.
- An unknown ``kid`` (a rotation: the provider signs with a new key) triggers
  a refetch that the request waits for. Refetches are rate-limited to one per
  ``min_refetch_interval`` and shared by concurrent callers, so a flood of
  tokens with forged ``kid``s costs the provider at most one request per
  interval.
- A refresh that fails keeps the old keys; a refresh that succeeds replaces
  them (a key the provider withdrew stops working).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import jwt
import orjson

log = logging.getLogger(__name__)

# A JWKS is a few keys; anything much larger is not one.
MAX_JWKS_BYTES = 512 * 1024


class KeyNotFound(Exception):
    """No usable key for a token (unknown ``kid``, or the provider could not be asked)."""


class JwksKeys:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 3.0,
        max_age: float = 300.0,
        min_refetch_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.max_age = max_age
        self.min_refetch_interval = min_refetch_interval
        self._clock = clock
        self.fetches = 0  # requests sent to the provider (tests and metrics)
        self.last_error: str | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def key(self, kid: str | None) -> jwt.PyJWK:
        """The signing key named ``kid`` (or the only key, for a token without one)."""
        if self._fetched_at is None or kid not in self._keys:
            if self._may_refetch():
                await self._refresh_shared()
        elif self._clock() - self._fetched_at > self.max_age and self._may_refetch():
            # Stale but known: answer now, refresh behind the request.
            self._start_refresh()
        if kid is None:
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))
            raise KeyNotFound("token has no kid and the key set has more than one key")
        found = self._keys.get(kid)
        if found is None:
            reason = f"no key with this kid in the key set ({self.last_error})" if self.last_error else "unknown kid"
            raise KeyNotFound(reason)
        return found

    async def close(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
            await asyncio.gather(self._inflight, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def _may_refetch(self) -> bool:
        if self._inflight is not None:
            return True  # joining a fetch under way costs nothing
        return self._attempted_at is None or self._clock() - self._attempted_at >= self.min_refetch_interval

    def _start_refresh(self) -> asyncio.Task[None]:
        if self._inflight is None:
            self._attempted_at = self._clock()
            self._inflight = asyncio.create_task(self._refresh(), name="jwks-refresh")
            self._inflight.add_done_callback(self._refresh_done)
        return self._inflight

    def _refresh_done(self, task: asyncio.Task[None]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _refresh_shared(self) -> None:
        # Shielded: a caller that gives up (its request was cancelled) must not
        # cancel the fetch that other callers are waiting for.
        await asyncio.shield(self._start_refresh())

    async def _refresh(self) -> None:
        self.fetches += 1
        try:
            body = await self._fetch()
            keys = _parse_key_set(body)
        except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWTError) as exc:
            reason = _describe(exc)
            if reason != self.last_error:
                log.warning(
                    "JWKS %s: cannot refresh the signing keys (%s); keeping %d cached",
                    self.url,
                    reason,
                    len(self._keys),
                )
            self.last_error = reason
            return
        if self.last_error is not None:
            log.info("JWKS %s: signing keys refreshed again (%d keys)", self.url, len(keys))
        self.last_error = None
        self._keys = keys
        self._fetched_at = self._clock()

    async def _fetch(self) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        async with self._session.get(self.url, headers={"Accept": "application/json"}) as response:
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            if response.content_length is not None and response.content_length > MAX_JWKS_BYTES:
                raise ValueError("key set too large")
            raw = await response.content.read(MAX_JWKS_BYTES + 1)
            if len(raw) > MAX_JWKS_BYTES:
                raise ValueError("key set too large")
            return orjson.loads(raw)


def _parse_key_set(body: Any) -> dict[str, jwt.PyJWK]:
    """The set's signing keys by ``kid`` (PyJWT parses them; encryption keys and unusable ones are skipped)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("keys"), list):
        raise ValueError("not a JSON Web Key Set")
    usable = [entry for entry in body["keys"] if isinstance(entry, Mapping) and entry.get("use", "sig") == "sig"]
    key_set = jwt.PyJWKSet([dict(entry) for entry in usable]) if usable else None
    keys: dict[str, jwt.PyJWK] = {}
    for key in key_set.keys if key_set is not None else []:
        keys[str(key.key_id or "")] = key
    if not keys:
        raise ValueError("the key set has no usable signing key")
    if "" in keys and len(keys) > 1:
        del keys[""]  # keys without a kid are only usable when alone
    return keys


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectionError):
        return "unreachable"
    if isinstance(exc, orjson.JSONDecodeError):
        return "not JSON"
    return str(exc) or type(exc).__name__
