"""Security headers on every response (an ``on_response_prepare`` hook).

The GUI (``/`` and ``/static/``) is plain files with no inline script or
style, so its policy allows only its own origin, plus the WebSocket on the
same public host (as a trusted proxy names it: ``proxy.py``). Everything
else is data (JSON, Prometheus text), which no page may frame, run or
sniff, and no cache may keep: ``Cache-Control: no-store`` unless the handler
chose otherwise (REST documents send ``private, no-cache`` so that clients
revalidate with ``If-None-Match``).
"""

from __future__ import annotations

from aiohttp import web

from .keys import public_view_key
from .proxy import HOST

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


def gui_policy(host: str | None, scheme: str = "http") -> str:
    """The GUI's Content-Security-Policy; the socket's ws:/wss: origin is spelled out for older
    browsers, in which 'self' does not cover WebSocket schemes (only when the host is well-formed).
    A page served over https can open only wss: sockets, so ws: is left out then."""
    if not host or not HOST.fullmatch(host):
        sockets = ""
    elif scheme == "https":
        sockets = f" wss://{host}"
    else:
        sockets = f" ws://{host} wss://{host}"
    return _GUI_POLICY.format(sockets=sockets)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    for name, value in COMMON.items():
        headers.setdefault(name, value)
    if is_gui(request.path):
        view = request.get(public_view_key)
        host, scheme = (view.host, view.scheme) if view is not None else (request.host, request.scheme)
        headers.setdefault("Content-Security-Policy", gui_policy(host, scheme))
    else:
        headers.setdefault("Content-Security-Policy", DATA_POLICY)
        headers.setdefault("Cache-Control", "no-store")
