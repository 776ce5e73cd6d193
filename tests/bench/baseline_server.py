#!/usr/bin/env python3
"""The in-project ceiling for fan-out: a minimal aiohttp loop that sends one
pre-encoded message to every socket, over and over, as fast as it can.

``BENCH_PORT`` (env) is the port; ``BENCH_MESSAGE_BYTES`` the payload size.
Each socket gets a snapshot-shaped frame when it subscribes (so the load
processes see it as ready); ``GET /start`` starts the broadcast loop.

It is also the floor for change-to-client latency (bench_change_source.py's
``floor`` mode): ``GET /send?value=N`` writes one delta-sized frame carrying
``"vma_eta_seconds":N`` to every socket at once, the way pushsvc's hub does
(one ready-made frame, ``transport.write`` on each idle socket), and
``GET /background?rate=R`` writes another such frame to every socket R times
a second, standing in for the other jobs' deltas. No database, no binlog, no
coalescing window, no diff: only the fan-out.

It is also the ceiling for REST (bench_rest.py): with ``BENCH_REST_LIST`` and
``BENCH_REST_DETAIL`` naming files, ``GET /api/v1/vm-contexts`` and
``GET /api/v1/vm-contexts/{name}`` return those bytes from memory with an
``ETag`` (``BENCH_REST_ETAG``), and a matching ``If-None-Match`` gets a 304.
No token check, no middleware: a trivial handler.
"""

from __future__ import annotations

import asyncio
import os

import orjson
from aiohttp import WSMsgType, web

from pushsvc.wsframe import text_frame

SOCKETS: web.AppKey[set] = web.AppKey("sockets", set)
TRANSPORTS: web.AppKey[dict] = web.AppKey("transports", dict)  # each socket's transport
STATE: web.AppKey[dict] = web.AppKey("state", dict)
DELTA_BYTES = 380  # about pushsvc's dashboard delta for one job's progress


def message(size: int) -> bytes:
    body = {"type": "delta", "topic": "vm-contexts", "epoch": "baseline", "seq": 1, "patch": {"pad": ""}}
    pad = max(0, size - len(orjson.dumps(body)))
    body["patch"]["pad"] = "x" * pad
    return orjson.dumps(body)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    request.app[TRANSPORTS][ws] = request.transport
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_frame(
                    b'{"type":"snapshot","topic":"vm-contexts","epoch":"baseline","seq":0,"data":{}}', WSMsgType.TEXT
                )
    finally:
        request.app[SOCKETS].discard(ws)
        request.app[TRANSPORTS].pop(ws, None)
    return ws


async def broadcast(app: web.Application, data: bytes) -> None:
    sockets = app[SOCKETS]
    while True:
        for ws in list(sockets):
            try:
                await ws.send_frame(data, WSMsgType.TEXT)
            except (ConnectionError, RuntimeError):
                sockets.discard(ws)
        await asyncio.sleep(0)


def write_to_all(app: web.Application, payload: bytes) -> None:
    """One frame to every socket, written at once where nothing is queued (pushsvc's fast path)."""
    frame = text_frame(payload)
    for ws, transport in app[TRANSPORTS].items():
        if transport is None or transport.is_closing():
            continue
        if transport.get_write_buffer_size():
            asyncio.get_running_loop().create_task(ws.send_frame(payload, WSMsgType.TEXT))
        else:
            transport.write(frame)


async def send_marker(request: web.Request) -> web.Response:
    value = int(request.query["value"])
    write_to_all(request.app, _padded(b'{"vma_eta_seconds":%d}' % value))
    return web.Response(text="sent")


async def background(request: web.Request) -> web.Response:
    app, rate = request.app, float(request.query["rate"])

    async def loop() -> None:
        payload = _padded(b'{"other_job":1}')
        while True:
            await asyncio.sleep(1 / rate)
            write_to_all(app, payload)

    if "background" not in app[STATE]:
        app[STATE]["background"] = asyncio.create_task(loop())
    return web.Response(text="started")


def _padded(patch: bytes) -> bytes:
    head = b'{"type":"delta","topic":"vm-contexts","epoch":"baseline","seq":1,"patch":'
    return head + patch + b',"pad":"' + b"x" * max(0, DELTA_BYTES - len(head) - len(patch) - 10) + b'"}'


async def start(request: web.Request) -> web.Response:
    app = request.app
    if "task" not in app[STATE]:
        app[STATE]["task"] = asyncio.create_task(
            broadcast(app, message(int(os.environ.get("BENCH_MESSAGE_BYTES", "400"))))
        )
    return web.Response(text="started")


def rest_handler(body: bytes, etag: str):
    async def handler(request: web.Request) -> web.Response:
        headers = {"ETag": etag}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers=headers, content_type="application/json")

    return handler


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    app = web.Application()
    app[SOCKETS] = set()
    app[TRANSPORTS] = {}
    app[STATE] = {}
    app.router.add_get("/api/v1/ws", websocket)
    app.router.add_get("/start", start)
    app.router.add_get("/send", send_marker)
    app.router.add_get("/background", background)
    app.router.add_get("/healthz", healthz)
    if os.environ.get("BENCH_REST_LIST"):
        etag = os.environ.get("BENCH_REST_ETAG", '"baseline"')
        with (
            open(os.environ["BENCH_REST_LIST"], "rb") as listing,
            open(os.environ["BENCH_REST_DETAIL"], "rb") as detail,
        ):
            list_body, detail_body = listing.read(), detail.read()
        app.router.add_get("/api/v1/vm-contexts", rest_handler(list_body, etag))
        app.router.add_get("/api/v1/vm-contexts/{vm_name}", rest_handler(detail_body, etag))
    web.run_app(app, host="127.0.0.1", port=int(os.environ["BENCH_PORT"]), access_log=None, print=None)


if __name__ == "__main__":
    main()
