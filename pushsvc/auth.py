"""Bearer-token (JWT) verification, and minting for the CLI.

The algorithm is pinned by configuration: a token signed with any other
algorithm (``none`` included) is refused, ``exp`` is required, and issuer and
audience are checked when configured. HMAC secrets come from ``auth.secret``,
else ``auth.secret_file``, else a random secret generated once into the data
directory (mode 0600) so that ``run.py token`` and the server agree. Public
keys come from ``auth.public_key_file`` or, for tokens issued by the
operator's identity provider, from its JWKS endpoint (``auth.jwks_url``,
``jwks.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import jwt

from .config import AuthConfig, ConfigError, data_dir
from .jwks import JwksKeys, KeyNotFound
from .outage import OutageLog

log = logging.getLogger(__name__)

# RFC 7518 3.2: an HMAC key at least as long as the hash output.
MIN_SECRET_LENGTH = {"HS256": 32, "HS384": 48, "HS512": 64}
# Token times a datetime can hold: 1970-01-01 to 9999-12-31T23:59:59Z.
MAX_TIMESTAMP = 253_402_300_799
TIME_CLAIMS = ("exp", "nbf", "iat")
# A key id is a short name; a longer one is not worth a lookup (or a log line).
MAX_KID_LENGTH = 256


class TokenError(Exception):
    """The token is missing, malformed, badly signed, expired or not for us."""


@dataclass(frozen=True)
class Claims:
    subject: str
    expires_at: dt.datetime | None


def load_secret(config: AuthConfig) -> str:
    """The HMAC secret: configured, from a file, or generated once and kept."""
    if config.secret:
        secret = config.secret
    else:
        path = Path(config.secret_file) if config.secret_file else data_dir() / "jwt-secret"
        if not path.exists() and not config.secret_file:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(64))
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"auth.secret_file: cannot read {path}: {exc.strerror}") from None
    minimum = MIN_SECRET_LENGTH.get(config.algorithm, 32)
    if len(secret.encode()) < minimum:
        raise ConfigError(f"auth.secret: must be at least {minimum} bytes for {config.algorithm}")
    return secret


def _read_key(key: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"auth.{key}: cannot read {path}: {exc.strerror}") from None


class TokenVerifier:
    """Verifies bearer tokens against the configured key: a secret, a PEM public key, or a JWKS endpoint.

    ``verify`` is a coroutine because a JWKS key may have to be fetched (an
    unknown ``kid`` after a rotation); with a static key it never awaits.
    """

    def __init__(self, config: AuthConfig) -> None:
        self._config = config
        self._jwks: JwksKeys | None = None
        self._key: str = ""
        if config.jwks_url:
            self._jwks = JwksKeys(
                config.jwks_url,
                timeout=config.jwks_timeout,
                max_age=config.jwks_max_age,
                min_refetch_interval=config.jwks_min_refetch_interval,
            )
        elif config.algorithm.startswith("HS"):
            self._key = load_secret(config)
        else:
            self._key = _read_key("public_key_file", config.public_key_file)
        self._refusals = OutageLog(log, "tokens refused for want of a signing key", remind_every=60.0)

    async def verify(self, token: str) -> Claims:
        """The token's claims, or TokenError for any problem with it (never another exception).

        Every time claim present must be a number within ``MAX_TIMESTAMP``: a
        validly signed ``exp`` of 1e30 passes PyJWT's checks, and turning it
        into a datetime would fail outside any handler's error path.
        """
        key: str | jwt.PyJWK = self._key
        if self._jwks is not None:
            key = await self._jwks_key(token)
        return self._decode(token, key)

    async def close(self) -> None:
        if self._jwks is not None:
            await self._jwks.close()

    async def _jwks_key(self, token: str) -> jwt.PyJWK:
        assert self._jwks is not None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError(type(exc).__name__) from None
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > MAX_KID_LENGTH):
            raise TokenError("bad kid")
        try:
            key = await self._jwks.key(kid)
        except KeyNotFound as exc:
            # Logged (once per run, then counted): an operator must see why tokens fail
            # when the identity provider is unreachable or rotated to a key we cannot fetch.
            self._refusals.failed(str(exc))
            raise TokenError("no signing key") from None
        self._refusals.succeeded()
        return key

    def _decode(self, token: str, key: str | jwt.PyJWK) -> Claims:
        config = self._config
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[config.algorithm],
                issuer=config.issuer or None,
                audience=config.audience or None,
                leeway=config.leeway,
                options={"require": ["exp"], "verify_aud": bool(config.audience)},
            )
        except (jwt.PyJWTError, ValueError, OverflowError) as exc:
            raise TokenError(type(exc).__name__) from None
        for name in TIME_CLAIMS:
            if name in claims and not _is_timestamp(claims[name]):
                raise TokenError(f"{name} out of range")
        return Claims(subject=str(claims.get("sub", "")), expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC))


def _is_timestamp(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= MAX_TIMESTAMP


def mint_token(config: AuthConfig, subject: str, ttl: dt.timedelta) -> str:
    """A signed token for ``subject`` valid for ``ttl`` (HMAC secret or ``auth.private_key_file``)."""
    if config.algorithm.startswith("HS"):
        key = load_secret(config)
    elif config.private_key_file:
        key = _read_key("private_key_file", config.private_key_file)
    else:
        raise ConfigError(f"auth.private_key_file: required to mint {config.algorithm} tokens")
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, object] = {"sub": subject, "iat": now, "nbf": now, "exp": now + ttl}
    if config.issuer:
        claims["iss"] = config.issuer
    if config.audience:
        claims["aud"] = config.audience
    return jwt.encode(claims, key, algorithm=config.algorithm)


def parse_ttl(text: str) -> dt.timedelta:
    """``90s``, ``30m``, ``12h``, ``7d`` (or plain seconds)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            seconds = float(text[:-1]) * units[text[-1]]
        else:
            seconds = float(text)
    except ValueError:
        raise ValueError(f"invalid duration {text!r}; use e.g. 90s, 30m, 12h, 7d") from None
    if seconds <= 0:
        raise ValueError("duration must be positive")
    return dt.timedelta(seconds=seconds)
