"""The REST handlers: the seed's two endpoints plus health, readiness and metrics.

Handlers are thin: parse and validate the request, read one document through
``reads``, map domain outcomes to the seed's bodies. ``ETag`` is a hash of
the exact body bytes, so ``If-None-Match`` answers 304 whenever nothing the
client would see has changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable
from typing import TypeVar

import orjson
from aiohttp import web

from .errors import error_response, json_response, not_found, retrieve_failed
from .keys import broker_key, builder_key, config_key, hub_key, metrics_key, poller_key, read_outage_key, store_key
from .logsafe import printable
from .reads import read_detail_document, read_list_document
from .store import StoreUnavailable

log = logging.getLogger(__name__)

CONTEXT_STATUSES = (
    "discovered",
    "replicating",
    "ready_for_failover",
    "failed_over_test",
    "failed_over_live",
    "completed",
    "failed",
    "cleanup_required",
)
MAX_PAGE = 1000
T = TypeVar("T")


class BadRequest(Exception):
    pass


def _single(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise BadRequest(f"{name} may be given only once")
    return values[0] if values else None


def parse_integer(text: str, low: int, high: int) -> int | None:
    """``text`` as an integer in ``low..high``, or None.

    ASCII digits only: ``str.isdigit`` also takes "²", "①" and Arabic-Indic
    digits, and an unbounded run of digits costs quadratic time to convert.
    """
    if not 0 < len(text) <= len(str(high)) or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if low <= value <= high else None


def _integer(request: web.Request, name: str, low: int, high: int) -> int | None:
    text = _single(request, name)
    if text is None:
        return None
    value = parse_integer(text, low, high)
    if value is None:
        raise BadRequest(f"{name} must be an integer from {low} to {high}")
    return value


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    for raw in if_none_match.split(","):
        candidate = raw.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def _document_response(request: web.Request, document: object) -> web.Response:
    body = orjson.dumps(document)
    etag = _etag(body)
    # Any cache must revalidate (the ETag makes that a 304); shared caches must not keep it at all.
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if _matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers, content_type="application/json", charset="utf-8")


async def list_vm_contexts(request: web.Request) -> web.StreamResponse:
    try:
        status = _single(request, "status")
        if status is not None and status not in CONTEXT_STATUSES:
            raise BadRequest(f"status must be one of: {', '.join(CONTEXT_STATUSES)}")
        limit = _integer(request, "limit", 1, MAX_PAGE)
        offset = _integer(request, "offset", 0, 2**31 - 1) or 0
    except BadRequest as exc:
        return error_response(400, str(exc))
    read = read_list_document(request.app[store_key], request.app[builder_key], status, limit, offset)
    try:
        document = await _read(request, read)
    except _ReadFailed:
        return retrieve_failed()
    return _document_response(request, document)


async def get_vm_context(request: web.Request) -> web.StreamResponse:
    vm_name = request.match_info["vm_name"]
    read = read_detail_document(request.app[store_key], request.app[builder_key], vm_name)
    try:
        document = await _read(request, read)
    except _ReadFailed:
        return retrieve_failed()
    if document is None:
        return not_found(vm_name)
    return _document_response(request, document)


class _ReadFailed(Exception):
    pass


async def _read(request: web.Request, read: Awaitable[T]) -> T:
    """Await a store read under the configured deadline; unavailability becomes _ReadFailed.

    Failures are logged once per outage with a count (``OutageLog``), not one line each.
    """
    timeout = request.app[config_key].database.query_timeout
    outage = request.app[read_outage_key]
    try:
        async with asyncio.timeout(timeout):
            document = await read
    except (StoreUnavailable, TimeoutError) as exc:
        outage.failed(f"{printable(str(exc) or 'timed out')} [{request.method} {printable(request.path)}]")
        raise _ReadFailed from None
    outage.succeeded()
    return document


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers, holds the appliance's schema, and the poller is not stuck on an error.

    ``{"status", "database", "schema", "poller"}``: 200 when all are "ok", else 503; plus the broker's
    ``broker``, ``role`` and ``epoch``. A cluster follower does not ask the database (it sends it no
    statements at all): it reports the leader's view, the retained database status. ``broker: degraded``
    (Redis unreachable, serving alone) is still ready.
    """
    store = request.app[store_key]
    poller = request.app[poller_key]
    broker = request.app[broker_key]
    described = broker.describe()
    if not broker.reads_database:
        database_ok = request.app[hub_key].status_frame() is None
        body = {"status": "ok" if database_ok else "unavailable", "database": "ok" if database_ok else "unavailable"}
        return json_response({**body, **described}, status=200 if database_ok else 503)
    try:
        async with asyncio.timeout(request.app[config_key].database.query_timeout):
            has_schema = await store.has_schema()
    except (StoreUnavailable, TimeoutError):
        return json_response({"status": "unavailable", "database": "unavailable", **described}, status=503)
    body = {
        "status": "ok",
        "database": "ok",
        "schema": "ok" if has_schema else "missing",
        "poller": "ok" if poller.last_error is None else "error",
        **described,
    }
    if not has_schema or poller.last_error is not None:
        body["status"] = "unavailable"
    return json_response(body, status=200 if body["status"] == "ok" else 503)


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[metrics_key]
    return web.Response(body=registry.render(), headers={"Content-Type": registry.content_type})
