"""The production HTTP server on a real socket: malformed requests, slow and silent connections."""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
import pytest
from aiohttp import web

from pushsvc.app import create_app
from pushsvc.httpserver import Runner

from ..helpers import assert_error_body, make_config, make_token
from ..rawhttp import exchange, request


@pytest.fixture
async def serve(database_url, store):
    """Start the app as ``run.py`` does (``httpserver.Runner``); yields a function of config overrides -> port."""
    runners: list[web.AppRunner] = []

    async def start(**sections) -> int:
        runner = Runner(
            create_app(make_config(database_url, **sections)), access_log=logging.getLogger("pushsvc.access")
        )
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner.addresses[0][1]

    yield start
    for runner in runners:
        await runner.cleanup()


def _no_error_records(caplog) -> None:
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, [record.getMessage() for record in errors]


async def test_an_over_long_authorization_header_is_not_echoed(serve, caplog):
    port = await serve()
    token = make_token()
    header = f"Bearer {token}{'A' * 9000}"
    with caplog.at_level(logging.DEBUG):
        response = await exchange("127.0.0.1", port, request("/api/v1/vm-contexts", {"Authorization": header}))
    assert response is not None and response.status == 400
    assert_error_body(orjson.loads(response.body), "Bad request: request line or header too long")
    assert token[:20].encode() not in response.body
    _no_error_records(caplog)
    logged = "\n".join(record.getMessage() + str(record.exc_info or "") for record in caplog.records)
    assert token[:20] not in logged and "Traceback" not in logged
    assert "bad request from 127.0.0.1: request line or header too long" in logged


@pytest.mark.parametrize("expect", [b"100-con\xbbinue", b"foo", b"bar" * 100])
async def test_unknown_expectations_get_a_json_417_quoting_nothing(serve, caplog, expect):
    port = await serve()
    with caplog.at_level(logging.INFO):
        for path in ("/healthz", "/api/v1/vm-contexts", "/nothing-here"):
            response = await exchange("127.0.0.1", port, request(path, {"Expect": expect}))
            assert response is not None and response.status == 417
            assert_error_body(orjson.loads(response.body), "Expectation Failed: only 100-continue is supported")
    _no_error_records(caplog)


async def test_expect_100_continue_still_works(serve, auth_headers):
    port = await serve()
    headers = {"Expect": "100-continue", **auth_headers}
    response = await exchange("127.0.0.1", port, request("/api/v1/vm-contexts", headers))
    assert response is not None and response.status == 200  # after "100 Continue"


MALFORMED = {
    "header without colon": b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    "NUL in path": b"GET /\x00x HTTP/1.1\r\nHost: x\r\n\r\n",
    "DEL in header value": b"GET / HTTP/1.1\r\nHost: x\r\nX-Request-ID: a\x7fb\r\n\r\n",
    "bad method": b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad version": b"GET / HTTP/9.Z\r\nHost: x\r\n\r\n",
    "request line too long": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "header name too long": b"GET / HTTP/1.1\r\n" + b"X" * 9000 + b": 1\r\n\r\n",
    "too many headers": b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(200)) + b"\r\n",
    "two content lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "bad chunked body": b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n",
    "space before colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "bare LF": b"GET / HTTP/1.1\nHost: x\n\n",
    "not HTTP": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)),
}


async def test_malformed_requests_get_a_json_400_and_no_error_log(serve, caplog):
    """Each case on its own connection (one server: a database per case would cost more than the cases)."""
    port = await serve()
    problems = {}
    for case, data in MALFORMED.items():
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            response = await exchange("127.0.0.1", port, data)
            healthy = await exchange("127.0.0.1", port, request("/healthz"))
        errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
        if response is not None and response.status >= 400:
            body = orjson.loads(response.body) if response.body.startswith(b"{") else {"error": response.body}
            if response.status >= 500 or not str(body["error"]).startswith(("Bad request", "Method Not Allowed")):
                problems[case] = (response.status, response.body[:200])
        if errors or healthy is None or healthy.status != 200:
            problems[case] = (errors, healthy)
    assert not problems


async def test_a_silent_connection_is_closed_after_keepalive_timeout(serve):
    port = await serve(server={"keepalive_timeout": 0.5})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()
    assert 0.4 < time.monotonic() - started < 2.5


async def test_headers_dribbled_slowly_are_cut_off_at_the_deadline(serve):
    """A slowloris client: one header byte every 100 ms never completes; the connection ends at the deadline."""
    port = await serve(server={"keepalive_timeout": 0.5})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    closed = asyncio.create_task(reader.read())
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for byte in b"X-Slow: " + b"a" * 100:
            if closed.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.1)  # the client's own pace: this is the behaviour under test
        assert await asyncio.wait_for(closed, 5) == b""
    finally:
        writer.close()
    assert time.monotonic() - started < 2.5


async def test_an_idle_keep_alive_connection_is_closed_after_keepalive_timeout(serve):
    port = await serve(server={"keepalive_timeout": 0.5})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(
            next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[1]
        )
        await reader.readexactly(length)
        idle_since = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()
    assert time.monotonic() - idle_since < 2.5
