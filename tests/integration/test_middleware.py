"""The request pipeline: request ids, the 500 body, and what reaches the error log."""

from __future__ import annotations

import logging

import pytest

from ..rawhttp import exchange, request


async def test_a_safe_request_id_is_echoed(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "trace-42.a_b:c"})
    assert response.headers["X-Request-ID"] == "trace-42.a_b:c"


@pytest.mark.parametrize(
    "value",
    [
        "x" * 65,
        "a\tb",
        "a\u2028b",
        "a b",
        "<script>",
        "eyJhbGciOiJIUzI1NiJ9",
    ],
)
async def test_an_unsafe_request_id_is_replaced(client, value):
    response = await exchange(client.host, client.port, request("/healthz", {"X-Request-ID": value.encode()}))
    assert response is not None and response.status == 200
    echoed = response.headers["x-request-id"]
    assert echoed != value and len(echoed) == 16 and echoed.isalnum()


@pytest.mark.parametrize("name", ["a" * 300, "app.js/x", "b" * 255 + "/" + "c" * 255])
async def test_static_names_the_filesystem_cannot_hold_are_404(client, caplog, name):
    with caplog.at_level(logging.INFO):
        response = await client.get("/static/" + name)
    assert response.status == 404
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
