"""The WebSocket contract (protocol.md): auth, origin, messages, errors, limits, close codes."""

from __future__ import annotations

import asyncio
import datetime as dt

import aiohttp
import pytest

from pushsvc.app import create_app
from pushsvc.keys import hub_key, poller_key

from ..helpers import make_config, make_token
from ..wsclient import LiveClient


async def _app(aiohttp_client, database_url, **sections):
    app = create_app(make_config(database_url, **sections), run_poller=False)
    return app, await aiohttp_client(app)


# -- authentication ---------------------------------------------------------------


async def test_welcome_by_header(manual_app, token):
    app, client = manual_app
    ws = await client.ws_connect("/api/v1/ws", headers={"Authorization": f"Bearer {token}"})
    live = LiveClient(ws)
    welcome = await live.next()
    assert list(welcome) == ["type", "session", "epoch", "expires_at", "heartbeat_s"]
    assert welcome["type"] == "welcome" and welcome["epoch"] == app[hub_key].epoch
    assert isinstance(welcome["session"], str) and len(welcome["session"]) >= 12
    assert welcome["heartbeat_s"] == 20
    expires = dt.datetime.strptime(welcome["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert 3500 < (expires - dt.datetime.now(dt.UTC)).total_seconds() <= 3600


async def test_welcome_by_first_frame_echoes_id(manual_app, token):
    _, client = manual_app
    live = LiveClient(await client.ws_connect("/api/v1/ws"))
    await live.send({"type": "auth", "token": token, "id": 7})
    welcome = await live.next()
    assert welcome["type"] == "welcome" and welcome["id"] == 7


@pytest.mark.parametrize(
    "first, conforming",
    [
        ({"type": "subscribe", "topic": "vm-contexts"}, True),
        ({"type": "ping"}, True),
        ({"type": "auth", "token": "garbage"}, True),
        ({"type": "auth"}, False),  # no token: outside the contract on purpose
        ({"type": "auth", "token": make_token(ttl=-3600)}, True),
    ],
)
async def test_anything_but_a_valid_auth_first_closes_4001(manual_app, first, conforming):
    _, client = manual_app
    live = LiveClient(await client.ws_connect("/api/v1/ws"))
    await (live.send(first) if conforming else live.send_unchecked(first))
    assert await live.expect_closed() == 4001


async def test_non_json_first_frame_closes_4001(manual_app):
    _, client = manual_app
    ws = await client.ws_connect("/api/v1/ws")
    await ws.send_unchecked("hello")
    assert await LiveClient(ws).expect_closed() == 4001


async def test_bad_header_token_closes_4001(manual_app):
    _, client = manual_app
    ws = await client.ws_connect("/api/v1/ws", headers={"Authorization": "Bearer nope"})
    assert await LiveClient(ws).expect_closed() == 4001


async def test_no_auth_within_timeout_closes_4001(aiohttp_client, database_url, store):
    _, client = await _app(aiohttp_client, database_url, websocket={"auth_timeout": 0.2})
    ws = await client.ws_connect("/api/v1/ws")
    assert await LiveClient(ws).expect_closed() == 4001


async def test_token_in_query_string_is_refused(manual_app, token):
    _, client = manual_app
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect(f"/api/v1/ws?access_token={token}")
    assert info.value.status == 401


async def test_refresh_sends_new_welcome_same_session(manual_app, token):
    app, client = manual_app
    live = LiveClient(await client.ws_connect("/api/v1/ws"))
    await live.send({"type": "auth", "token": make_token(ttl=600)})
    first = await live.expect("welcome")
    await live.send({"type": "auth", "token": make_token(ttl=7200), "id": "r1"})
    second = await live.expect("welcome")
    assert second["id"] == "r1"
    assert (second["session"], second["epoch"]) == (first["session"], first["epoch"])
    assert second["expires_at"] > first["expires_at"]


async def test_refresh_with_bad_token_closes_4001(manual_app, token):
    _, client = manual_app
    live = await LiveClient.connect(client, token)
    await live.send({"type": "auth", "token": make_token(secret="z" * 64)})
    assert await live.expect_closed() == 4001


async def test_expired_token_closes_4002(aiohttp_client, database_url, store):
    _, client = await _app(aiohttp_client, database_url, auth={"leeway": 0})
    live = await LiveClient.connect(client, make_token(ttl=1))
    assert await live.expect_closed(timeout=5) == 4002


async def test_refresh_postpones_expiry(aiohttp_client, database_url, store):
    app, client = await _app(aiohttp_client, database_url, auth={"leeway": 0})
    live = await LiveClient.connect(client, make_token(ttl=1))
    await live.send({"type": "auth", "token": make_token(ttl=3600)})
    await live.expect("welcome")
    # Past the first token's expiry, the socket still answers.
    await asyncio.sleep(1.3)  # waiting out a token lifetime is the behaviour under test
    await live.send({"type": "ping", "id": 1})
    assert (await live.expect("pong"))["id"] == 1


# -- origin -----------------------------------------------------------------------


async def test_foreign_origin_is_403_before_upgrade(manual_app, token):
    _, client = manual_app
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/api/v1/ws", headers={"Origin": "https://evil.example"})
    assert info.value.status == 403


async def test_own_and_allowed_origins_are_accepted(aiohttp_client, database_url, store, token):
    _, client = await _app(aiohttp_client, database_url, websocket={"allowed_origins": ["https://gui.example"]})
    own = f"http://{client.host}:{client.port}"
    for origin in (own, "https://gui.example"):
        live = await LiveClient.connect(client, token, headers={"Origin": origin})
        await live.close()
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect("/api/v1/ws", headers={"Origin": "https://gui.example.evil"})


# -- messages and errors -------------------------------------------------------------


async def test_ping_pong_with_and_without_id(manual_app, token):
    _, client = manual_app
    live = await LiveClient.connect(client, token)
    await live.send({"type": "ping"})
    assert await live.next() == {"type": "pong"}
    await live.send({"type": "ping", "id": "abc"})
    assert await live.next() == {"id": "abc", "type": "pong"}


@pytest.mark.parametrize(
    "raw, code",
    [
        ("{not json", "bad_request"),
        ("[1, 2]", "bad_request"),
        ('{"topic": "vm-contexts"}', "bad_request"),
        ('{"type": "dance"}', "bad_request"),
        ('{"type": "subscribe"}', "bad_request"),
        ('{"type": "subscribe", "topic": "vm-contexts", "since": {"epoch": 1}}', "bad_request"),
        ('{"type": "ping", "id": [1]}', "bad_request"),
        ('{"type": "subscribe", "topic": "vm-things"}', "unknown_topic"),
        ('{"type": "subscribe", "topic": "vm-context/"}', "unknown_topic"),
        ('{"type": "unsubscribe"}', "bad_request"),
    ],
)
async def test_bad_messages_get_error_frames_and_socket_stays(manual_app, token, raw, code):
    _, client = manual_app
    live = await LiveClient.connect(client, token)
    await live.send_unchecked(raw)
    error = await live.next()
    assert error["type"] == "error" and error["code"] == code and error["message"]
    await live.send({"type": "ping"})
    assert (await live.next())["type"] == "pong"


async def test_error_echoes_id(manual_app, token):
    _, client = manual_app
    live = await LiveClient.connect(client, token)
    await live.send_unchecked({"type": "subscribe", "topic": "nope", "id": 42})
    assert await live.next() == {"type": "error", "code": "unknown_topic", "message": "unknown topic: nope", "id": 42}


async def test_binary_frame_is_bad_request(manual_app, token):
    _, client = manual_app
    live = await LiveClient.connect(client, token)
    await live.send_unchecked(b'{"type":"ping"}')
    assert (await live.next())["code"] == "bad_request"


async def test_too_many_subscriptions(aiohttp_client, database_url, store, token):
    app, client = await _app(aiohttp_client, database_url, websocket={"max_subscriptions": 2})
    live = await LiveClient.connect(client, token)
    for name in ("a", "b"):
        await live.send({"type": "subscribe", "topic": f"vm-context/{name}"})
    await live.send({"type": "subscribe", "topic": "vm-context/c", "id": 3})
    error = await live.next()
    assert error["code"] == "too_many_subscriptions" and error["id"] == 3
    # Re-subscribing to a topic already held is not a new subscription.
    await live.send({"type": "subscribe", "topic": "vm-context/a"})
    await live.send({"type": "ping"})
    assert await live.next() == {"type": "pong"}
    await app[poller_key].poll_once()
    assert {(await live.expect("snapshot"))["topic"] for _ in range(2)} == {"vm-context/a", "vm-context/b"}


async def test_rate_limit(aiohttp_client, database_url, store, token):
    _, client = await _app(aiohttp_client, database_url, websocket={"rate_limit": 0.5, "rate_burst": 3})
    live = await LiveClient.connect(client, token)
    for index in range(4):
        await live.send({"type": "ping", "id": index})
    replies = [await live.next() for _ in range(4)]
    assert [reply["type"] for reply in replies] == ["pong", "pong", "pong", "error"]
    assert replies[3]["code"] == "rate_limited" and replies[3]["id"] == 3


async def test_repeated_abuse_closes_1008(aiohttp_client, database_url, store, token):
    _, client = await _app(aiohttp_client, database_url, websocket={"max_errors": 5})
    live = await LiveClient.connect(client, token)
    for _ in range(5):
        await live.send_unchecked("nonsense")
    assert await live.expect_closed() == 1008
    assert sum(1 for message in live.log if message.get("type") == "error") >= 4


async def test_oversized_frame_closes_1009(aiohttp_client, database_url, store, token):
    _, client = await _app(aiohttp_client, database_url, websocket={"max_message_bytes": 1024})
    live = await LiveClient.connect(client, token)
    await live.send_unchecked('{"type": "ping", "pad": "' + "x" * 2000 + '"}')
    assert await live.expect_closed() == 1009


async def test_default_frame_limit_is_64_kib(manual_app, token):
    _, client = manual_app
    live = await LiveClient.connect(client, token)
    await live.send_unchecked('{"type": "ping", "pad": "' + "x" * 60000 + '"}')
    assert (await live.next())["type"] == "pong"
    await live.send_unchecked('{"type": "ping", "pad": "' + "x" * 66000 + '"}')
    assert await live.expect_closed() == 1009


async def test_heartbeat_closes_silent_sockets(aiohttp_client, database_url, store, token):
    _, client = await _app(aiohttp_client, database_url, websocket={"heartbeat": 0.2})
    ws = await client.ws_connect("/api/v1/ws", headers={"Authorization": f"Bearer {token}"}, autoping=False)
    kinds = []
    async with asyncio.timeout(5):
        while True:
            msg = await ws.receive()
            kinds.append(msg.type)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                break
    assert aiohttp.WSMsgType.PING in kinds


async def test_shutdown_closes_sockets_with_1001(aiohttp_client, database_url, store, token):
    app = create_app(make_config(database_url), run_poller=False)
    client = await aiohttp_client(app)
    live = await LiveClient.connect(client, token)
    closing = asyncio.create_task(client.server.close())
    assert await live.expect_closed() == 1001
    await closing
