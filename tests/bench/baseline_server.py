#!/usr/bin/env python3
"""The in-project ceiling for fan-out: a minimal aiohttp loop that sends one
pre-encoded message to every socket, over and over, as fast as it can.

``BENCH_PORT`` (env) is the port; ``BENCH_MESSAGE_BYTES`` the payload size.
Each socket gets a snapshot-shaped frame when it subscribes (so the load
processes see it as ready); ``GET /start`` starts the broadcast loop.

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

SOCKETS: web.AppKey[set] = web.AppKey("sockets", set)
STATE: web.AppKey[dict] = web.AppKey("state", dict)


def message(size: int) -> bytes:
    body = {"type": "delta", "topic": "vm-contexts", "epoch": "baseline", "seq": 1, "patch": {"pad": ""}}
    pad = max(0, size - len(orjson.dumps(body)))
    body["patch"]["pad"] = "x" * pad
    return orjson.dumps(body)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_frame(
                    b'{"type":"snapshot","topic":"vm-contexts","epoch":"baseline","seq":0,"data":{}}', WSMsgType.TEXT
                )
    finally:
        request.app[SOCKETS].discard(ws)
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
    app[STATE] = {}
    app.router.add_get("/api/v1/ws", websocket)
    app.router.add_get("/start", start)
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
