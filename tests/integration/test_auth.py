"""Bearer-token checks on the REST endpoints: every refusal is the seed's 401."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pushsvc.app import create_app

from ..helpers import SECRET, assert_error_body, make_config, make_token
from ..wsclient import LiveClient


def _unsigned(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _hs256_signed(key: bytes, claims: dict) -> str:
    """HS256 by hand (PyJWT itself refuses to HMAC with a PEM key)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + part(json.dumps(claims).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + part(signature)


def _future(seconds: float) -> int:
    return int((dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).timestamp())


BAD_TOKENS = {
    "alg none": lambda: _unsigned({"sub": "x", "exp": _future(3600)}),
    "wrong algorithm": lambda: make_token(algorithm="HS512"),
    "bad signature": lambda: make_token(secret="another-secret-" + "y" * 40),
    "expired": lambda: make_token(ttl=-3600),
    "not yet valid": lambda: make_token(nbf=_future(3600)),
    "no exp": lambda: make_token(exp=None),
    "garbage": lambda: "not-a-jwt",
    "truncated": lambda: make_token()[:-5],
    # Validly signed, with times no datetime can hold (beyond 9999-12-31, or not finite).
    "exp past year 9999": lambda: make_token(exp=253402300800),
    "exp 1e30": lambda: make_token(exp=1e30),
    "exp 10**29": lambda: make_token(exp=10**29),
    "exp infinite": lambda: _hs256_signed(SECRET.encode(), {"sub": "x", "exp": float("inf")}),
    "exp NaN": lambda: _hs256_signed(SECRET.encode(), {"sub": "x", "exp": float("nan")}),
    "exp a boolean": lambda: make_token(exp=True),
    "nbf before 1970": lambda: make_token(nbf=-1e30),
    "iat NaN": lambda: _hs256_signed(SECRET.encode(), {"sub": "x", "exp": _future(3600), "iat": float("nan")}),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
async def test_bad_tokens_are_401(client, seeded, case):
    for path in ("/api/v1/vm-contexts", "/api/v1/vm-contexts/pgtest1"):
        response = await client.get(path, headers={"Authorization": f"Bearer {BAD_TOKENS[case]()}"})
        assert response.status == 401, case
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert_error_body(await response.json(), "Authentication required")


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
async def test_bad_tokens_close_the_socket_4001(manual_app, case):
    """Header or first frame: any token problem is a 4001 close, never an HTTP error in the stream."""
    _, client = manual_app
    token = BAD_TOKENS[case]()
    by_header = LiveClient(await client.ws_connect("/api/v1/ws", headers={"Authorization": f"Bearer {token}"}))
    assert await by_header.expect_closed() == 4001, case
    by_frame = LiveClient(await client.ws_connect("/api/v1/ws"))
    await by_frame.send({"type": "auth", "token": token})
    assert await by_frame.expect_closed() == 4001, case


async def test_the_last_second_of_year_9999_is_a_valid_exp(client, seeded):
    token = make_token(exp=253402300799)
    response = await client.get("/api/v1/vm-contexts", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"])
async def test_missing_or_malformed_header_is_401(client, seeded, header):
    headers = {} if header is None else {"Authorization": header}
    response = await client.get("/api/v1/vm-contexts", headers=headers)
    assert response.status == 401
    assert_error_body(await response.json(), "Authentication required")


async def test_issuer_and_audience_are_checked(aiohttp_client, database_url, seeded):
    config = make_config(database_url, auth={"issuer": "oma", "audience": "pushsvc"})
    client = await aiohttp_client(create_app(config))
    good = make_token(iss="oma", aud="pushsvc")
    assert (await client.get("/api/v1/vm-contexts", headers={"Authorization": f"Bearer {good}"})).status == 200
    for bad in (make_token(iss="other", aud="pushsvc"), make_token(iss="oma", aud="other"), make_token()):
        response = await client.get("/api/v1/vm-contexts", headers={"Authorization": f"Bearer {bad}"})
        assert response.status == 401


def _write_key(tmp_path, private_key) -> tuple[str, str]:
    public = tmp_path / "public.pem"
    public.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    private = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return str(public), private.decode()


@pytest.mark.parametrize(
    "algorithm, new_key",
    [
        ("RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", lambda: ec.generate_private_key(ec.SECP256R1())),
    ],
)
async def test_public_key_algorithms(aiohttp_client, database_url, seeded, tmp_path, algorithm, new_key):
    public_path, private_pem = _write_key(tmp_path, new_key())
    config = make_config(database_url, auth={"algorithm": algorithm, "public_key_file": public_path})
    client = await aiohttp_client(create_app(config))
    good = make_token(secret=private_pem, algorithm=algorithm)
    assert (await client.get("/api/v1/vm-contexts", headers={"Authorization": f"Bearer {good}"})).status == 200
    _, other_private = _write_key(tmp_path / "..", new_key())
    forged = make_token(secret=other_private, algorithm=algorithm)
    # HS256 signed with the public key's text: the classic algorithm-confusion attack.
    with open(public_path, "rb") as handle:
        confused = _hs256_signed(handle.read(), {"sub": "x", "exp": _future(3600)})
    for bad in (forged, confused, _unsigned({"sub": "x", "exp": _future(3600)})):
        response = await client.get("/api/v1/vm-contexts", headers={"Authorization": f"Bearer {bad}"})
        assert response.status == 401
