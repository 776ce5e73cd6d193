"""Security headers on every response (an ``on_response_prepare`` hook).

The GUI (``/`` and ``/static/``) is plain files with no inline script or
style, so its policy allows only its own origin, plus the WebSocket on the
same host. Everything else is data (JSON, Prometheus text), which no page
may frame, run or sniff, and no cache may keep: ``Cache-Control: no-store``
unless the handler chose otherwise (REST documents send
``private, no-cache`` so that clients revalidate with ``If-None-Match``).
"""

from __future__ import annotations

import re

from aiohttp import web

# Host header values safe to put in a header: a name or address and an optional port.
_SAFE_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?")
_GUI_POLICY = (
    "default-src 'self'; connect-src 'self'{sockets}; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def is_gui(path: str) -> bool:
    return path == "/" or path.startswith("/static/")


def gui_policy(host: str | None) -> str:
    """The GUI's Content-Security-Policy; the socket's ws:/wss: origin is spelled out for older
    browsers, in which 'self' does not cover WebSocket schemes (only when the Host is well-formed)."""
    sockets = f" ws://{host} wss://{host}" if host and _SAFE_HOST.fullmatch(host) else ""
    return _GUI_POLICY.format(sockets=sockets)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    for name, value in COMMON.items():
        headers.setdefault(name, value)
    if is_gui(request.path):
        headers.setdefault("Content-Security-Policy", gui_policy(request.host))
    else:
        headers.setdefault("Content-Security-Policy", DATA_POLICY)
        headers.setdefault("Cache-Control", "no-store")
