"""The request pipeline: request ids, the 500 body, and what reaches the error log."""

from __future__ import annotations

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
