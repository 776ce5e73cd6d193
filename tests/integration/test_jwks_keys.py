"""The JWKS key cache against a local provider on a real socket: caching, rotation, rate limits, outages."""

from __future__ import annotations

import asyncio

import jwt
import pytest

from pushsvc.jwks import JwksKeys, KeyNotFound

from ..jwks_server import JwksProvider, SigningKey


@pytest.fixture
async def provider():
    idp = JwksProvider()
    idp.keys = [SigningKey("k1")]
    await idp.start()
    yield idp
    await idp.stop()


class Clock:
    """A scripted monotonic clock: the rate limit and the key set's age are what these tests examine."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def keys(provider, clock):
    cache = JwksKeys(provider.url, timeout=1.0, max_age=300, min_refetch_interval=30, clock=clock)
    yield cache
    await cache.close()


def verify(token: str, key: jwt.PyJWK) -> dict:
    return jwt.decode(token, key, algorithms=["RS256"])


async def test_known_kid_is_served_from_the_cache(provider, keys):
    token = provider.keys[0].token()
    for _ in range(5):
        assert verify(token, await keys.key("k1"))["sub"] == "operator"
    assert provider.requests == 1


async def test_rotation_is_picked_up_by_an_unknown_kid(provider, keys, clock):
    await keys.key("k1")
    provider.keys = [SigningKey("k2"), provider.keys[0]]
    clock.now += 31  # past min_refetch_interval
    new = provider.keys[0]
    assert verify(new.token(), await keys.key("k2"))["sub"] == "operator"
    assert provider.requests == 2


async def test_withdrawn_key_stops_working_after_a_refresh(provider, keys, clock):
    old = provider.keys[0]
    await keys.key("k1")
    provider.keys = [SigningKey("k2")]
    clock.now += 31
    await keys.key("k2")
    with pytest.raises(KeyNotFound):
        await keys.key(old.kid)


async def test_forged_kids_are_rate_limited(provider, keys, clock):
    await keys.key("k1")
    results = await asyncio.gather(*(keys.key(f"forged-{n}") for n in range(500)), return_exceptions=True)
    assert all(isinstance(result, KeyNotFound) for result in results)
    assert provider.requests == 1  # forged kids within the interval ask the provider nothing
    clock.now += 31
    results = await asyncio.gather(*(keys.key(f"forged-{n}") for n in range(500)), return_exceptions=True)
    assert all(isinstance(result, KeyNotFound) for result in results)
    assert provider.requests == 2  # one more fetch per interval, shared by all 500


async def test_concurrent_first_requests_share_one_fetch(provider, keys):
    found = await asyncio.gather(*(keys.key("k1") for _ in range(50)))
    assert {key.key_id for key in found} == {"k1"}
    assert provider.requests == 1


async def test_stale_keys_refresh_behind_the_request_and_survive_an_outage(provider, keys, clock):
    token = provider.keys[0].token()
    await keys.key("k1")
    provider.down = True
    clock.now += 301  # older than max_age: the next use refreshes in the background
    assert verify(token, await keys.key("k1"))["sub"] == "operator"
    refresh = keys._inflight
    assert refresh is not None
    await refresh
    assert provider.requests == 2
    assert keys.last_error == "HTTP 503"
    assert verify(token, await keys.key("k1"))["sub"] == "operator"  # the cached key still works
    clock.now += 31
    with pytest.raises(KeyNotFound, match="HTTP 503"):
        await keys.key("k9")
    provider.down = False
    provider.keys.append(SigningKey("k9"))
    clock.now += 31
    assert (await keys.key("k9")).key_id == "k9"
    assert keys.last_error is None


async def test_unreachable_provider_is_a_refusal_not_a_hang(provider):
    url = provider.url
    await provider.stop()
    cache = JwksKeys(url, timeout=1.0)
    try:
        with pytest.raises(KeyNotFound, match="unreachable"):
            await asyncio.wait_for(cache.key("k1"), timeout=5)
    finally:
        await cache.close()


async def test_token_without_kid_uses_the_only_key(provider, keys, clock):
    token = provider.keys[0].token(kid=None)
    assert verify(token, await keys.key(None))["sub"] == "operator"
    provider.keys.append(SigningKey("k2"))
    clock.now += 31
    await keys.key("k2")
    with pytest.raises(KeyNotFound):
        await keys.key(None)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"keys": "x"}', b'{"keys": [{"kty": "nonsense"}]}', b'{"keys": []}'],
)
async def test_a_broken_key_set_is_refused_and_logged(body, aiohttp_server, caplog):
    from aiohttp import web

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/jwks", serve)
    server = await aiohttp_server(app)
    cache = JwksKeys(str(server.make_url("/jwks")), timeout=1.0)
    try:
        with pytest.raises(KeyNotFound):
            await cache.key("k1")
        assert cache.last_error
        assert any("cannot refresh the signing keys" in record.getMessage() for record in caplog.records)
    finally:
        await cache.close()
