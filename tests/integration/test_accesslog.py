"""The access log through a real socket: no forged lines, no raw control bytes, no tokens."""

from __future__ import annotations

import logging

import pytest
from yarl import URL

from ..helpers import make_token


def _access_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "aiohttp.access"]


@pytest.mark.parametrize(
    "raw_path, escaped",
    [
        ("/x%0A2026-11-28%2007:00:00,000%20CRITICAL%20pushsvc.auth:%20forged", "/x\\x0a2026-11-28 07:00:00,000"),
        ("/x%0D%0Aforged", "/x\\x0d\\x0aforged"),
        ("/nul%00byte", "/nul\\x00byte"),
        ("/api/v1/vm-contexts/a%E2%80%A8b%7F", "/api/v1/vm-contexts/a\\u2028b\\x7f"),
        ("/x?q=%0Aforged%00", "/x?q=\\x0aforged\\x00"),
    ],
)
async def test_client_text_cannot_forge_a_log_line(client, caplog, raw_path, escaped):
    with caplog.at_level(logging.INFO):
        await client.get(URL(raw_path, encoded=True))
    lines = _access_lines(caplog)
    assert len(lines) == 1
    assert escaped in lines[0]
    assert lines[0].isprintable()


async def test_long_paths_are_capped(client, caplog):
    with caplog.at_level(logging.INFO):
        await client.get("/" + "a" * 6000)
    (line,) = _access_lines(caplog)
    assert len(line) < 600 and "...[6001 chars]" in line


@pytest.mark.parametrize("key", ["access-token", "id_token", "state", "t", "x", "Token", "TOKEN"])
async def test_jwt_shaped_query_values_are_redacted_whatever_the_key(client, caplog, key):
    token = make_token()
    with caplog.at_level(logging.INFO):
        await client.get("/healthz", params={key: token, "limit": "5"})
        await client.get("/api/v1/vm-contexts/" + token)
    lines = _access_lines(caplog)
    assert len(lines) == 2
    for line in lines:
        assert token not in line and token.split(".")[1] not in line and "<redacted>" in line
    assert "limit=5" in lines[0]


async def test_token_keys_are_redacted_whatever_the_value(client, caplog):
    with caplog.at_level(logging.INFO):
        await client.get("/healthz", params={"access_token": "opaque-secret", "password": "hunter2"})
    (line,) = _access_lines(caplog)
    assert "opaque-secret" not in line and "hunter2" not in line
    assert "access_token=<redacted>" in line and "password=<redacted>" in line
