"""The access log: one line per HTTP request, whatever the client sent.

A line never carries a header (the bearer token travels in one). The request
target is the one client-chosen part: values under token-like query keys and
any JWT-shaped text, in the path or any query value, are replaced by
``<redacted>``; control characters are escaped and the target is capped, so
a request cannot forge or flood lines (``logsafe``).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .keys import public_view_key, request_id_key
from .logsafe import REDACTED, printable, redact_tokens

# Query keys whose value is a credential whatever its shape (compared lower-cased).
TOKEN_QUERY_KEYS = frozenset(
    {
        "token",
        "access_token",
        "access-token",
        "id_token",
        "refresh_token",
        "jwt",
        "auth",
        "authorization",
        "bearer",
        "password",
        "secret",
        "api_key",
        "apikey",
    }
)
TARGET_LIMIT = 300


def request_target(request: web.BaseRequest) -> str:
    """The path and query as the log shows them: tokens redacted, escaped, capped."""
    target = request.path
    if request.query:
        target += "?" + "&".join(
            f"{key}={REDACTED if key.lower() in TOKEN_QUERY_KEYS else value}" for key, value in request.query.items()
        )
    return printable(redact_tokens(target), TARGET_LIMIT)


class AccessLogger(AbstractAccessLogger):
    """``client "METHOD target" status bytes time [request id]``.

    The client is the one a trusted proxy named (``proxy.py``), else the
    socket's peer (also for a request too malformed to reach the app).
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        view = request.get(public_view_key)
        remote = view.remote if view is not None else request.remote
        self.logger.info(
            '%s "%s %s" %s %s %.1fms [request %s]',
            printable(remote or "-", 64),
            printable(request.method, 32),
            request_target(request),
            response.status,
            response.body_length,
            time * 1000,
            request.get(request_id_key, "-"),
        )
