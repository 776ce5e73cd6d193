"""HTTP error bodies exactly as the seed doc shows them."""

from __future__ import annotations

import orjson
from aiohttp import web

from .timefmt import utc_now_text

AUTHENTICATION_REQUIRED = "Authentication required"
RETRIEVE_FAILED = "Failed to retrieve VM context"


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json", charset="utf-8"
    )


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """``{"error": message, "timestamp": "2025-09-09T12:15:30Z"}`` with ``status``."""
    return json_response({"error": message, "timestamp": utc_now_text()}, status=status, headers=headers)


def unauthorized() -> web.Response:
    return error_response(401, AUTHENTICATION_REQUIRED, {"WWW-Authenticate": 'Bearer realm="pushsvc"'})


def not_found(vm_name: str) -> web.Response:
    return error_response(404, f"VM context not found for: {vm_name}")


def retrieve_failed() -> web.Response:
    return error_response(500, RETRIEVE_FAILED)
