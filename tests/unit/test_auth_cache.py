"""auth.TokenVerifier remembers tokens that passed, and still refuses them once they expire."""

from __future__ import annotations

import time

import jwt
import pytest

from pushsvc import auth
from pushsvc.auth import TokenError, TokenVerifier
from pushsvc.config import AuthConfig

SECRET = "s" * 40


def token(exp: float, secret: str = SECRET) -> str:
    return jwt.encode({"sub": "t", "exp": int(exp)}, secret, algorithm="HS256")


async def test_a_remembered_token_is_refused_once_it_expires(monkeypatch):
    verifier = TokenVerifier(AuthConfig(secret=SECRET, leeway=10))
    now = time.time()
    good = token(now + 60)
    assert (await verifier.verify(good)).subject == "t"
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: pytest.fail("a remembered token is not decoded again"))
    assert (await verifier.verify(good)).subject == "t"
    monkeypatch.setattr(auth.time, "time", lambda: now + 69)  # exp + leeway not yet passed
    assert (await verifier.verify(good)).subject == "t"
    monkeypatch.setattr(auth.time, "time", lambda: now + 71)
    with pytest.raises(TokenError):
        await verifier.verify(good)


async def test_refused_tokens_are_not_remembered():
    verifier = TokenVerifier(AuthConfig(secret=SECRET))
    for _ in range(2):
        with pytest.raises(TokenError):
            await verifier.verify(token(time.time() + 60, secret="x" * 40))
    with pytest.raises(TokenError):
        await verifier.verify(token(time.time() - 60))
    assert verifier._verified == {}


async def test_the_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(auth, "VERIFIED_CACHE_SIZE", 3)
    verifier = TokenVerifier(AuthConfig(secret=SECRET))
    for offset in range(10):
        await verifier.verify(token(time.time() + 60 + offset))
        assert len(verifier._verified) <= 3
