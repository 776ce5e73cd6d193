"""The request pipeline: a request id and the seed's 500 body for every request, the request's public view,
then the bearer check.

``error_middleware`` runs first: whatever fails below it is logged once, with
the request id and never a header, and answered with the seed's 500 body.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from .auth import TokenError
from .errors import error_response, retrieve_failed, unauthorized
from .keys import (
    claims_key,
    config_key,
    metrics_key,
    public_view_key,
    request_id_key,
    trusted_proxies_key,
    verifier_key,
)
from .logsafe import printable, safe_request_id
from .proxy import HEADERS, PublicView, resolve

log = logging.getLogger(__name__)

NOT_A_FILE = {errno.ENAMETOOLONG, errno.ENOTDIR, errno.ELOOP}
PROTECTED_PREFIX = "/api/v1/vm-contexts"
METRICS_PATH = "/metrics"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unexpected errors become the seed's 500 body, logged once with a request id.

    A client's ``X-Request-ID`` is echoed only when it is short and of a safe
    charset (``logsafe.safe_request_id``); otherwise the server makes one.
    """
    request_id = safe_request_id(request.headers.get("X-Request-ID")) or uuid.uuid4().hex[:16]
    request[request_id_key] = request_id
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith("/api/"):
            response = error_response(exc.status, exc.reason)
        else:
            raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno in NOT_A_FILE:
            # A static-file name the filesystem cannot hold: aiohttp maps only ENOENT and EACCES.
            response = web.Response(status=404, text="404: Not Found")
        else:
            log.exception(
                "unhandled error in %s %s [request %s]",
                printable(request.method, 32),
                printable(request.path),
                request_id,
            )
            response = retrieve_failed()
    if not response.prepared:
        response.headers["X-Request-ID"] = request_id
    request.app[metrics_key].http_requests.labels(str(response.status)).inc()
    return response


@web.middleware
async def proxy_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Computes the request's public view once (``proxy.py``): the access log, the WebSocket Origin check
    and the GUI's Content-Security-Policy read it from ``public_view_key``."""
    request[public_view_key] = public_view(request)
    return await handler(request)


def public_view(request: web.Request) -> PublicView:
    """The client's address and the public scheme and host: what a trusted proxy says, else the socket's."""
    trusted = request.app[trusted_proxies_key]
    headers = {name: ", ".join(request.headers.getall(name)) for name in HEADERS if trusted and name in request.headers}
    return resolve(request.remote, request.scheme, request.host, headers, trusted)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer JWT on the REST endpoints, and on ``/metrics`` when ``metrics.require_auth`` (the WebSocket
    authenticates itself)."""
    path = request.path
    if (
        path == PROTECTED_PREFIX
        or path.startswith(PROTECTED_PREFIX + "/")
        or (path == METRICS_PATH and request.app[config_key].metrics.require_auth)
    ):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return unauthorized()
        try:
            request[claims_key] = await request.app[verifier_key].verify(token.strip())
        except TokenError:
            return unauthorized()
    return await handler(request)
