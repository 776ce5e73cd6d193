"""The contract hooks on the shared test client: a server that drifts from the documents fails the test.

The servers here are tiny stand-ins that break the contract on purpose; each
test takes back the violation it provoked so that only the assertion counts.
"""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from aiohttp import web

from ..contracts.checker import ContractViolation
from ..helpers import load_seed_json
from ..wsclient import LiveClient


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers={"ETag": '"x"', "Cache-Control": "private, no-cache"},
    )


def take_back(contracts, seen: int) -> list[str]:
    """The violations recorded since ``seen``, removed from the session's list."""
    taken = contracts.violations[seen:]
    del contracts.violations[seen:]
    return taken


async def test_a_drifting_rest_body_fails(aiohttp_client, contracts):
    async def detail(request: web.Request) -> web.Response:
        body = load_seed_json("detail-response.json")
        body["context"]["internal_note"] = "leaked"
        return json_response(body)

    app = web.Application()
    app.router.add_get("/api/v1/vm-contexts/{vm_name}", detail)
    client = await aiohttp_client(app)
    seen = len(contracts.violations)
    with pytest.raises(ContractViolation, match="internal_note"):
        await client.get("/api/v1/vm-contexts/pgtest1")
    assert len(take_back(contracts, seen)) == 1


async def test_a_conforming_rest_body_is_counted(aiohttp_client, contracts):
    async def detail(request: web.Request) -> web.Response:
        return json_response(load_seed_json("detail-response.json"))

    app = web.Application()
    app.router.add_get("/api/v1/vm-contexts/{vm_name}", detail)
    client = await aiohttp_client(app)
    before = contracts.counts.rest[200]
    response = await client.get("/api/v1/vm-contexts/pgtest1")
    assert (await response.json())["context"]["vm_name"] == "pgtest1"  # the body is still there for the test
    assert contracts.counts.rest[200] == before + 1


def websocket_app(*frames: bytes | str, close_code: int = 1000) -> web.Application:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for frame in frames:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
        await ws.close(code=close_code)
        return ws

    app = web.Application()
    app.router.add_get("/api/v1/ws", handler)
    return app


WELCOME = '{"type":"welcome","session":"s","epoch":"e","expires_at":"2026-11-28T14:00:00Z","heartbeat_s":20}'


@pytest.mark.parametrize(
    "frame, close_code, problem",
    [
        (WELCOME.replace('"heartbeat_s":20', '"heartbeat_s":"20"'), 1000, "heartbeat_s"),
        ('{"type":"hello"}', 1000, "no server message has type 'hello'"),
        (b'{"type":"pong"}', 1000, "binary frame"),
        ('{"type":"pong"}', 4999, "close code 4999"),
    ],
)
async def test_a_drifting_frame_or_close_code_fails(aiohttp_client, contracts, frame, close_code, problem):
    client = await aiohttp_client(websocket_app(frame, close_code=close_code))
    live = LiveClient(await client.ws_connect("/api/v1/ws"))
    seen = len(contracts.violations)
    with pytest.raises(ContractViolation, match=problem):
        while True:
            await live.receive()
    assert len(take_back(contracts, seen)) == 1


async def test_received_frames_are_checked_even_on_a_raw_socket(aiohttp_client, contracts):
    client = await aiohttp_client(websocket_app('{"type":"pong","extra":1}'))
    ws = await client.ws_connect("/api/v1/ws")
    seen = len(contracts.violations)
    with pytest.raises(ContractViolation, match="extra"):
        await ws.receive()
    take_back(contracts, seen)


async def test_sent_frames_are_checked_unless_sent_unchecked(aiohttp_client, contracts):
    client = await aiohttp_client(websocket_app(WELCOME, close_code=1001))
    live = LiveClient(await client.ws_connect("/api/v1/ws"))
    seen = len(contracts.violations)
    with pytest.raises(ContractViolation, match="unknown"):
        await live.send({"type": "ping", "unknown": 1})
    with pytest.raises(ContractViolation, match="binary"):
        await live.ws.send_bytes(b"{}")
    assert len(take_back(contracts, seen)) == 2
    unchecked = contracts.counts.sent_unchecked
    await live.send_unchecked({"type": "ping", "unknown": 1})
    assert contracts.counts.sent_unchecked == unchecked + 1
    assert (await live.next())["type"] == "welcome"
    assert await live.expect_closed() == 1001


async def test_a_swallowed_violation_is_still_recorded(aiohttp_client, contracts):
    client = await aiohttp_client(websocket_app('{"type":"pong","extra":1}'))
    ws = await client.ws_connect("/api/v1/ws")
    seen = len(contracts.violations)
    try:
        await ws.receive()
    except AssertionError:
        pass  # what a careless test might do; the autouse fixture would still fail it
    assert take_back(contracts, seen) != []


async def test_sessions_a_test_makes_itself_can_be_checked(aiohttp_client, contracts):
    client = await aiohttp_client(websocket_app(WELCOME))
    async with aiohttp.ClientSession(**contracts.session_options()) as session:
        ws = await session.ws_connect(client.make_url("/api/v1/ws"))
        assert isinstance(ws, contracts.websocket_class)
        assert (await LiveClient(ws).next())["type"] == "welcome"
