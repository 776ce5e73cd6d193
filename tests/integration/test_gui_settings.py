"""GET /api/v1/gui-settings: what the GUI is told, with no token, under the data policy's headers."""

from __future__ import annotations

import pytest

from pushsvc.app import create_app
from pushsvc.headers import DATA_POLICY

from ..helpers import make_config


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwdw=="}],
    ids=["no token", "a bad token", "another scheme"],
)
async def test_settings_need_no_token_and_carry_the_data_headers(client, headers):
    response = await client.get("/api/v1/gui-settings", headers=headers)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert await response.json() == {"stall_after_s": 120.0}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"] == DATA_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "WWW-Authenticate" not in response.headers


async def test_the_configured_threshold_is_served(database_url, store, aiohttp_client):
    client = await aiohttp_client(create_app(make_config(database_url, gui={"stall_after_s": 900})))
    response = await client.get("/api/v1/gui-settings")
    assert await response.json() == {"stall_after_s": 900.0}
