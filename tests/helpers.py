"""Helpers shared by the tests: configs, tokens, seed documents and body checks."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import pathlib
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import jwt
from aiohttp import web

from pushsvc.config import Config, build_config
from pushsvc.demo.seed import SEED_TIMEZONE, load_seed
from pushsvc.httpserver import Runner
from pushsvc.patch import drop_nulls
from pushsvc.store import open_store

SECRET = "test-secret-" + "x" * 60
SEEDS = pathlib.Path(__file__).resolve().parent / "fixtures"


def load_seed_json(name: str):
    """One of the seed doc's example responses (tests/fixtures, copied from the seed API doc)."""
    return json.loads((SEEDS / name).read_text())


def make_config(database_url: str, **sections) -> Config:
    """A test service's config. REST reads the database on every request unless a test asks for
    ``rest={"live_ttl": ...}``: most tests use REST as the database's truth (a write, then a fetch
    that must show it; live documents compared with a fresh read), which answers from memory would
    make late by up to a poll interval or compare with themselves. tests/integration/test_rest_live.py
    covers the answers from memory."""
    raw = {
        "database": {"url": database_url, "timezone": SEED_TIMEZONE},
        "auth": {"secret": SECRET},
        "poller": {"interval": 0.1},
        "rest": {"live_ttl": 0},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return build_config(raw, {})


def make_token(secret: str = SECRET, algorithm: str = "HS256", ttl: float = 3600, **claims) -> str:
    now = dt.datetime.now(dt.UTC)
    payload = {"sub": "tester", "iat": now, "exp": now + dt.timedelta(seconds=ttl)}
    payload.update(claims)
    payload = {key: value for key, value in payload.items() if value is not None}
    return jwt.encode(payload, secret, algorithm=algorithm)


def assert_same_document(actual, expected, path="$"):
    """Equal values (JSON types included) and the same key order at every level."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert list(actual) == list(expected), f"key order differs at {path}"
        for key in expected:
            assert_same_document(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_same_document(a, e, f"{path}[{index}]")
    elif isinstance(expected, float) or isinstance(actual, float):
        # The seed writes some doubles as integers (sync_progress_percent: 0); both are JSON numbers.
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), path
        assert actual == expected, path
    else:
        assert type(actual) is type(expected) and actual == expected, f"{path}: {actual!r} != {expected!r}"


def assert_error_body(body: dict, message: str) -> None:
    assert list(body) == ["error", "timestamp"]
    assert body["error"] == message
    parsed = dt.datetime.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs((dt.datetime.utcnow() - parsed).total_seconds()) < 60


async def rest_dashboard(client, headers) -> dict:
    """What the ``vm-contexts`` document must equal: REST list items (``?include=last_job``) plus
    current-job summaries, keys in the dashboard's order."""
    from pushsvc.documents import job_summary

    listing = await (await client.get("/api/v1/vm-contexts?include=last_job", headers=headers)).json()
    entries = {}
    for item in listing["vm_contexts"]:
        name = item["vm_name"]
        quoted = urllib.parse.quote(name, safe="")
        detail = await (await client.get(f"/api/v1/vm-contexts/{quoted}", headers=headers)).json()
        context = {key: value for key, value in item.items() if key != "last_job"}
        entries.setdefault(
            name, {**context, "current_job": job_summary(detail["current_job"]), "last_job": item["last_job"]}
        )
    return drop_nulls({"vm_contexts": entries})


async def rest_detail(client, headers, vm_name: str):
    """What a ``vm-context/<name>`` document must equal (None for an unknown VM)."""
    response = await client.get("/api/v1/vm-contexts/" + urllib.parse.quote(vm_name, safe=""), headers=headers)
    if response.status == 404:
        return None
    assert response.status == 200
    return drop_nulls(await response.json())


async def seed_database(database_url: str) -> None:
    """The appliance's schema and the seed doc's rows in ``database_url``."""
    store = open_store(make_config(database_url).database)
    try:
        await store.create_schema()
        await load_seed(store)
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def served_as_run_py_serves(app: web.Application) -> AsyncIterator[int]:
    """``app`` on a free port through pushsvc's own runner (httpserver.Runner), as run.py serves it; yields the port."""
    runner = Runner(app, access_log=logging.getLogger("pushsvc.access"))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def finish_job_statements(context_id: str, job_id: str, disk_id: str) -> list[tuple[str, list[Any]]]:
    """The appliance's four-statement "finish job" write: job, disk, a CBT row, then the context."""
    return [
        (
            "UPDATE replication_jobs SET status = 'completed', progress_percent = 100, completed_at = NOW(3)"
            " WHERE id = %s",
            [job_id],
        ),
        ("UPDATE vm_disks SET sync_status = 'synced', sync_progress_percent = 100 WHERE id = %s", [disk_id]),
        (
            "INSERT INTO cbt_history (vm_context_id, job_id, disk_id, change_id, sync_type, sync_success)"
            " VALUES (%s, %s, 'disk-2000', 'change/2', 'initial', 1)",
            [context_id, job_id],
        ),
        (
            "UPDATE vm_replication_contexts SET current_job_id = NULL, current_status = 'ready_for_failover',"
            " successful_jobs = successful_jobs + 1, last_successful_job_id = %s WHERE context_id = %s",
            [job_id, context_id],
        ),
    ]
