"""``GET /api/v1/openapi.json`` and ``/api/v1/asyncapi.json``: the contracts, as JSON, without auth.

The YAML is parsed on the first request (in a thread: it is the one slow
step) and the encoded JSON is kept for the application's lifetime.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from .contracts import ASYNCAPI, OPENAPI, load_document


def document_handler(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler serving contract ``name`` (``contracts.OPENAPI`` or ``contracts.ASYNCAPI``) as JSON."""
    encoded: list[bytes] = []  # filled once, on the first request
    lock = asyncio.Lock()

    async def serve(request: web.Request) -> web.Response:
        if not encoded:
            async with lock:
                if not encoded:
                    document = await asyncio.to_thread(load_document, name)
                    encoded.append(orjson.dumps(document))
        return web.Response(body=encoded[0], content_type="application/json", charset="utf-8")

    return serve


def openapi_handler() -> Callable[[web.Request], Awaitable[web.Response]]:
    return document_handler(OPENAPI)


def asyncapi_handler() -> Callable[[web.Request], Awaitable[web.Response]]:
    return document_handler(ASYNCAPI)
