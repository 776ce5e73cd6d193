"""Health, readiness, a database that is down, access logs, and the CLI's config handling."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import yarl

from pushsvc.app import create_app
from pushsvc.config import ConfigError, build_config

from ..helpers import assert_error_body, make_config

REFUSING = "mysql://root@127.0.0.1:1/nothing"  # nothing listens on port 1: connections are refused


async def test_healthz_needs_no_auth(client):
    response = await client.get("/healthz")
    assert response.status == 200 and (await response.json()) == {"status": "ok"}


async def test_readyz_ok_when_database_answers(client):
    response = await client.get("/readyz")
    assert response.status == 200
    assert (await response.json())["database"] == "ok"
    assert (await response.json())["schema"] == "ok"


async def test_readyz_reports_the_schema(aiohttp_client, database_url):
    """A MariaDB database without the appliance's tables answers, but nothing can be served from it."""
    client = await aiohttp_client(create_app(make_config(database_url)))
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert (body["status"], body["database"], body["schema"]) == ("unavailable", "ok", "missing")


async def test_database_refusing_connections(aiohttp_client, auth_headers):
    client = await aiohttp_client(create_app(make_config(REFUSING)))
    for path in ("/api/v1/vm-contexts", "/api/v1/vm-contexts/pgtest1"):
        started = time.monotonic()
        response = await client.get(path, headers=auth_headers)
        assert time.monotonic() - started < 2.0
        assert response.status == 500
        body = await response.json()
        assert_error_body(body, "Failed to retrieve VM context")
    ready = await client.get("/readyz")
    assert ready.status == 503 and (await ready.json())["database"] == "unavailable"
    assert (await client.get("/healthz")).status == 200


async def test_database_goes_away_and_returns(aiohttp_client, store, db_proxy, auth_headers):
    proxy, url = db_proxy
    client = await aiohttp_client(create_app(make_config(url)))
    assert (await client.get("/api/v1/vm-contexts", headers=auth_headers)).status == 200
    await proxy.cut()
    started = time.monotonic()
    response = await client.get("/api/v1/vm-contexts", headers=auth_headers)
    assert time.monotonic() - started < 2.0
    assert response.status == 500
    assert_error_body(await response.json(), "Failed to retrieve VM context")
    assert (await client.get("/readyz")).status == 503
    await proxy.restore()
    response = await client.get("/api/v1/vm-contexts", headers=auth_headers)
    assert response.status == 200 and (await response.json()) == {"count": 0, "vm_contexts": []}
    assert (await client.get("/readyz")).status == 200


async def test_rest_read_failures_are_logged_once_per_outage(aiohttp_client, store, db_proxy, auth_headers, caplog):
    proxy, url = db_proxy
    client = await aiohttp_client(create_app(make_config(url)))
    await proxy.cut()
    with caplog.at_level(logging.INFO, logger="pushsvc.api"):
        for index in range(30):
            path = "/api/v1/vm-contexts" if index % 2 else "/api/v1/vm-contexts/pgtest1%0Aforged"
            assert (await client.get(yarl.URL(path, encoded=True), headers=auth_headers)).status == 500
        await proxy.restore()
        assert (await client.get("/api/v1/vm-contexts", headers=auth_headers)).status == 200
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "pushsvc.api"]
    assert len(lines) == 2, lines
    assert lines[0][0] == logging.WARNING and lines[0][1].startswith("REST database reads failing: ")
    assert "\n" not in lines[0][1] and lines[0][1].isprintable()
    assert lines[1][0] == logging.INFO and lines[1][1].startswith("REST database reads recovered: 30 failed in ")


@pytest.mark.parametrize(
    "database, expected",
    [
        ("missing", "Unknown database 'pushsvc_test_missing_db' (1049)"),
        ("wrong user", "Access denied for user 'pushsvc_nobody'@"),
    ],
)
async def test_database_errors_are_logged_with_the_servers_message(
    aiohttp_client, auth_headers, caplog, database, expected
):
    from ..conftest import MYSQL_SERVER, _server

    server = _server()
    if database == "missing":
        url = MYSQL_SERVER.rstrip("/") + "/pushsvc_test_missing_db"
    else:
        url = f"mysql://pushsvc_nobody:Secret-Pass-4711@{server['host']}:{server['port']}/x"
    client = await aiohttp_client(create_app(make_config(url)))
    with caplog.at_level(logging.WARNING, logger="pushsvc.api"):
        assert (await client.get("/api/v1/vm-contexts", headers=auth_headers)).status == 500
    (line,) = [r.getMessage() for r in caplog.records if r.name == "pushsvc.api"]
    assert expected in line
    assert "Secret-Pass-4711" not in line and "SELECT" not in line


async def test_access_log_has_no_token(aiohttp_client, config, store, auth_headers, token, caplog):
    client = await aiohttp_client(create_app(config))
    with caplog.at_level(logging.INFO):
        await client.get("/api/v1/vm-contexts?token=leaked", headers=auth_headers)
    lines = [record.getMessage() for record in caplog.records if "GET /api/v1/vm-contexts" in record.getMessage()]
    assert len(lines) == 1
    assert token not in lines[0] and "leaked" not in lines[0] and "token=<redacted>" in lines[0]


@pytest.mark.parametrize(
    "raw, env, message",
    [
        ({"server": {"port": 0}}, {}, "server.port"),
        ({}, {"PUSHSVC_SERVER_PORT": "http"}, "server.port: expected an integer"),
        ({}, {"PUSHSVC_POLLER_INTERVAL": "0.01"}, "poller.interval"),
        ({}, {"PUSHSVC_DATABASE_URL": "postgres://x/y"}, "database.url"),
        ({}, {"PUSHSVC_DATABASE_TIMEZONE": "Mars/Base"}, "database.timezone"),
        ({"auth": {"algorithm": "none"}}, {}, "auth.algorithm"),
        ({"auth": {"algorithm": "RS256"}}, {}, "auth.public_key_file"),
        ({"server": {"colour": "red"}}, {}, "server.colour: unknown key"),
        ({}, {"PUSHSVC_SERVER_COLOUR": "red"}, "PUSHSVC_SERVER_COLOUR"),
        ({"websocket": {"allowed_origins": ["not an origin"]}}, {}, "websocket.allowed_origins"),
    ],
)
def test_bad_config_names_the_key(raw, env, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        build_config(raw, env)


def test_environment_overrides():
    config = build_config(
        {"poller": {"interval": 1}},
        {
            "PUSHSVC_POLLER_INTERVAL": "0.25",
            "PUSHSVC_DATABASE_URL": "mysql://u:p%40ss@db.local:3307/migratekit_oma",
            "PUSHSVC_WEBSOCKET_ALLOWED_ORIGINS": "https://a.example, https://b.example:8443",
            "PUSHSVC_SERVER_ACCESS_LOG": "false",
        },
    )
    assert config.poller.interval == 0.25
    assert config.database.url.startswith("mysql://u:p%40ss@db.local:3307/")
    assert config.websocket.allowed_origins == ("https://a.example", "https://b.example:8443")
    assert config.server.access_log is False


def test_short_secret_is_refused_without_showing_it():
    from pushsvc.auth import load_secret

    with pytest.raises(ConfigError) as info:
        load_secret(build_config({"auth": {"secret": "short-but-secret"}}, {}).auth)
    assert "auth.secret" in str(info.value) and "short-but-secret" not in str(info.value)


async def test_metrics_exposes_the_counters(manual_app, seeded, token):
    from pushsvc.keys import poller_key

    from ..wsclient import LiveClient

    app, client = manual_app
    live = await LiveClient.connect(client, token)
    await live.send({"type": "subscribe", "topic": "vm-contexts"})
    await live.send({"type": "ping"})
    await live.expect("pong")
    await app[poller_key].poll_once()
    await live.expect("snapshot")
    text = await (await client.get("/metrics")).text()
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("pushsvc_") and " " in line
    }
    assert values["pushsvc_websockets"] == 1
    assert values["pushsvc_subscriptions"] == 1
    assert values["pushsvc_poll_queries_per_tick"] == 2  # contexts+jobs, and the read-only commit
    assert values["pushsvc_messages_sent_total"] >= 3  # welcome, pong, snapshot
    for name in (
        "pushsvc_poll_duration_seconds_count",
        "pushsvc_bytes_sent_total",
        "pushsvc_resyncs_total",
        "pushsvc_slow_closes_total",
        "pushsvc_poll_ticks_total",
    ):
        assert name in values


async def test_metrics_need_no_token_by_default(client):
    response = await client.get("/metrics")
    assert response.status == 200 and "pushsvc_websockets" in await response.text()


async def test_metrics_require_auth_switch(aiohttp_client, database_url, store, auth_headers):
    assert build_config({}, {"PUSHSVC_METRICS_REQUIRE_AUTH": "true"}).metrics.require_auth
    client = await aiohttp_client(create_app(make_config(database_url, metrics={"require_auth": True})))
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = await client.get("/metrics", headers=headers)
        assert response.status == 401
        assert_error_body(await response.json(), "Authentication required")
    response = await client.get("/metrics", headers=auth_headers)
    assert response.status == 200 and "pushsvc_websockets" in await response.text()
    assert (await client.get("/healthz")).status == 200


def test_cli_schema_seed_and_token(database_url, tmp_path):
    import subprocess
    import sys

    import jwt

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PUSHSVC_AUTH_SECRET": "s" * 40}
    run = [sys.executable, str(Path(__file__).resolve().parents[2] / "run.py")]
    done = subprocess.run(
        [*run, "schema", "--database", database_url, "--seed"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    token = subprocess.run(
        [*run, "token", "--subject", "alice", "--ttl", "90s"], capture_output=True, text=True, env=env
    )
    claims = jwt.decode(token.stdout.strip(), "s" * 40, algorithms=["HS256"])
    assert claims["sub"] == "alice" and claims["exp"] - claims["iat"] == 90
    bad = subprocess.run(
        [*run, "token"], capture_output=True, text=True, env={**env, "PUSHSVC_POLLER_INTERVAL": "fast"}
    )
    assert bad.returncode == 2 and "poller.interval" in bad.stderr and "Traceback" not in bad.stderr
