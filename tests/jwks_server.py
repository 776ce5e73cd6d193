"""A local identity provider's JWKS endpoint that rotates keys and goes down, for the JWKS tests."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


class SigningKey:
    """A private key with its ``kid``: signs tokens, publishes its public half as a JWK."""

    def __init__(self, kid: str, algorithm: str = "RS256") -> None:
        self.kid = kid
        self.algorithm = algorithm
        if algorithm.startswith("ES"):
            self.private = ec.generate_private_key(ec.SECP256R1())
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk = json.loads(algorithm.to_jwk(self.private.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": self.algorithm})
        return jwk

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def token(self, *, kid: str | None = "<own>", ttl: float = 3600, **claims: Any) -> str:
        now = dt.datetime.now(dt.UTC)
        payload: dict[str, Any] = {"sub": "operator", "iat": now, "exp": now + dt.timedelta(seconds=ttl)}
        payload.update(claims)
        headers = {} if kid is None else {"kid": self.kid if kid == "<own>" else kid}
        return jwt.encode(payload, self.private, algorithm=self.algorithm, headers=headers)


class JwksProvider:
    """``GET /jwks`` serves ``keys``; ``down`` answers 503; ``requests`` counts the fetches."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.down = False
        self.requests = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/jwks", self._jwks)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/jwks"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _jwks(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.down:
            return web.Response(status=503)
        return web.json_response({"keys": [key.public_jwk() for key in self.keys]})
