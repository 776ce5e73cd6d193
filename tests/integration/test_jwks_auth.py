"""Tokens from the operator's identity provider: pushsvc verifies them against a local JWKS endpoint.

REST and the WebSocket, with key rotation, unknown and forged ``kid``s, issuer
and audience, algorithm confusion and the provider going down.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

import pytest

from pushsvc.app import create_app

from ..helpers import assert_error_body, make_config
from ..jwks_server import JwksProvider, SigningKey
from ..wsclient import LiveClient

ISSUER = "https://idp.example/realms/oma"
AUDIENCE = "pushsvc"
LIST = "/api/v1/vm-contexts"


@pytest.fixture
async def provider():
    idp = JwksProvider()
    idp.keys = [SigningKey("rsa-1")]
    await idp.start()
    yield idp
    await idp.stop()


def jwks_config(database_url: str, provider: JwksProvider, algorithm: str = "RS256", **auth):
    settings = {
        "secret": "",
        "jwks_url": provider.url,
        "algorithm": algorithm,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        # Tests move faster than an identity provider's rotation: refetch on the first unknown kid at once.
        "jwks_min_refetch_interval": 0.001,
    }
    settings.update(auth)
    return make_config(database_url, auth=settings)


@pytest.fixture
async def jwks_client(aiohttp_client, database_url, seeded, provider):
    return await aiohttp_client(create_app(jwks_config(database_url, provider)))


def issued(key: SigningKey, **claims) -> str:
    claims.setdefault("iss", ISSUER)
    claims.setdefault("aud", AUDIENCE)
    return key.token(**claims)


async def status_of(client, token: str) -> int:
    response = await client.get(LIST, headers={"Authorization": f"Bearer {token}"})
    if response.status == 401:
        assert_error_body(await response.json(), "Authentication required")
    return response.status


async def test_a_token_from_a_published_key_works(jwks_client, provider):
    assert await status_of(jwks_client, issued(provider.keys[0])) == 200
    live = await LiveClient.connect(jwks_client, issued(provider.keys[0]))
    await live.ws.close()
    live = await LiveClient.connect(jwks_client, issued(provider.keys[0]), header=False)
    await live.ws.close()
    assert provider.requests == 1  # one fetch, then the cache


async def test_key_rotation_is_picked_up_without_a_restart(jwks_client, provider):
    old = provider.keys[0]
    assert await status_of(jwks_client, issued(old)) == 200
    new = SigningKey("rsa-2")
    provider.keys = [new, old]  # the provider publishes the next key, then signs with it
    assert await status_of(jwks_client, issued(new)) == 200
    provider.keys = [new]  # and withdraws the old one
    assert await status_of(jwks_client, issued(SigningKey("rsa-3"))) == 401  # an unknown kid refreshes the set
    assert await status_of(jwks_client, issued(old)) == 401
    assert await status_of(jwks_client, issued(new)) == 200


async def test_in_band_refresh_with_a_rotated_key(jwks_client, provider):
    live = await LiveClient.connect(jwks_client, issued(provider.keys[0]))
    new = SigningKey("rsa-2")
    provider.keys.append(new)
    await live.send({"type": "auth", "id": 7, "token": issued(new)})
    welcome = await live.expect("welcome")
    assert welcome["id"] == 7
    await live.ws.close()


async def test_forged_kids_cannot_hammer_the_provider(aiohttp_client, database_url, seeded, provider):
    config = jwks_config(database_url, provider, jwks_min_refetch_interval=60)
    client = await aiohttp_client(create_app(config))
    assert await status_of(client, issued(provider.keys[0])) == 200
    attacker = SigningKey("attacker")
    for n in range(200):
        assert await status_of(client, attacker.token(kid=f"forged-{n}", iss=ISSUER, aud=AUDIENCE)) == 401
    assert provider.requests == 1


@pytest.mark.parametrize(
    "claims",
    [{"iss": "https://evil.example/"}, {"aud": "someone-else"}, {"iss": None}, {"aud": None}],
    ids=["wrong iss", "wrong aud", "no iss", "no aud"],
)
async def test_issuer_and_audience_are_checked(jwks_client, provider, claims):
    wanted = {"iss": ISSUER, "aud": AUDIENCE, **claims}
    token = provider.keys[0].token(**{name: value for name, value in wanted.items() if value is not None})
    assert await status_of(jwks_client, token) == 401


def _hs256_with(key: bytes, header: dict, claims: dict) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = part(json.dumps(header).encode()) + "." + part(json.dumps(claims).encode())
    return signing_input + "." + part(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


async def test_hs256_signed_with_the_public_key_is_refused(jwks_client, provider):
    key = provider.keys[0]
    claims = json.loads(base64.urlsafe_b64decode(issued(key).split(".")[1] + "=="))
    for public in (key.public_pem(), json.dumps(key.public_jwk()).encode()):
        forged = _hs256_with(public, {"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims)
        assert await status_of(jwks_client, forged) == 401
    unsigned = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": key.kid}).encode()).rstrip(b"=").decode()
    assert await status_of(jwks_client, unsigned + "." + issued(key).split(".")[1] + ".") == 401


async def test_es256_keys_work_too(aiohttp_client, database_url, seeded, provider):
    ec_key = SigningKey("ec-1", algorithm="ES256")
    provider.keys = [ec_key]
    client = await aiohttp_client(create_app(jwks_config(database_url, provider, algorithm="ES256")))
    assert await status_of(client, issued(ec_key)) == 200
    assert await status_of(client, issued(SigningKey("rsa-1"))) == 401  # RS256 is not the pinned algorithm


async def test_provider_down_cached_keys_work_others_are_refused_with_a_logged_reason(jwks_client, provider, caplog):
    key = provider.keys[0]
    assert await status_of(jwks_client, issued(key)) == 200
    await provider.stop()
    caplog.set_level(logging.INFO)
    assert await status_of(jwks_client, issued(key)) == 200  # cached
    assert await status_of(jwks_client, issued(SigningKey("rsa-2"))) == 401  # cannot be fetched
    reasons = [record.getMessage() for record in caplog.records if record.name in ("pushsvc.auth", "pushsvc.jwks")]
    assert any("unreachable" in reason for reason in reasons), reasons
    live = await LiveClient.connect(jwks_client, issued(key))  # the WebSocket too
    await live.ws.close()


async def test_garbage_tokens_are_401_not_a_fetch(jwks_client, provider):
    for token in ("not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", issued(provider.keys[0])[:-10]):
        assert await status_of(jwks_client, token) == 401
    long_kid = SigningKey("k" * 300)
    assert await status_of(jwks_client, issued(long_kid)) == 401
    assert provider.requests <= 1
