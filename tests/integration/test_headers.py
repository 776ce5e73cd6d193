"""Security headers: the GUI's Content-Security-Policy, no framing or sniffing, no referrer, API caching."""

from __future__ import annotations

import pytest

from ..rawhttp import exchange, request

COMMON = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/style.css", "/static/js/connection.js"])
async def test_gui_responses(client, path):
    response = await client.get(path)
    assert response.status == 200
    for name, value in COMMON.items():
        assert response.headers[name] == value
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["connect-src"] == f"'self' ws://{client.host}:{client.port} wss://{client.host}:{client.port}"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]


async def test_the_page_has_no_inline_script_or_style(client):
    """What the policy would block: inline <script>, <style>, style= and on*= attributes."""
    html = await (await client.get("/")).text()
    for forbidden in ("<style", " style=", " onclick=", " onload=", "javascript:"):
        assert forbidden not in html
    scripts = [chunk.split(">", 1)[0] for chunk in html.split("<script")[1:]]
    assert scripts and all(" src=" in attributes for attributes in scripts)


async def test_a_hostile_host_header_stays_out_of_the_policy(client):
    response = await exchange(
        client.host,
        client.port,
        request("/", {"Host": "evil.example; script-src *"}).replace(b"Host: localhost\r\n", b""),
    )
    assert response is not None and response.status == 200
    assert "evil" not in response.headers["content-security-policy"]
    assert "connect-src 'self';" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    "path, cache_control",
    [
        ("/api/v1/vm-contexts", "private, no-cache"),
        ("/api/v1/vm-contexts/pgtest1", "private, no-cache"),
        ("/api/v1/vm-contexts/nope", "no-store"),
        ("/api/v1/nothing-here", "no-store"),
        ("/healthz", "no-store"),
        ("/readyz", "no-store"),
        ("/metrics", "no-store"),
    ],
)
async def test_api_responses(client, seeded, auth_headers, path, cache_control):
    response = await client.get(path, headers=auth_headers)
    assert response.headers["Cache-Control"] == cache_control
    for name, value in COMMON.items():
        assert response.headers[name] == value
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


async def test_unauthorized_responses_are_not_cached(client):
    response = await client.get("/api/v1/vm-contexts")
    assert response.status == 401 and response.headers["Cache-Control"] == "no-store"


async def test_the_etag_flow_still_answers_304(client, seeded, auth_headers):
    first = await client.get("/api/v1/vm-contexts/pgtest1", headers=auth_headers)
    again = await client.get(
        "/api/v1/vm-contexts/pgtest1", headers={**auth_headers, "If-None-Match": first.headers["ETag"]}
    )
    assert again.status == 304 and again.headers["Cache-Control"] == "private, no-cache"
