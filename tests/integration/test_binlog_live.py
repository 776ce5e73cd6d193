"""pushsvc with ``poller.source: binlog``, end to end: private MariaDB with the binlog on -> sockets.

Every test runs the service on a database of its own on the private server
(tests/binlog_server.py), with real WebSocket clients. The safety-net read is
set to an hour, so what reaches the clients between subscriptions comes from
the binlog's nudges alone. ``settle`` waits until the service has handled
every transaction up to the server's current binlog position.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from pushsvc.app import create_app
from pushsvc.changes import BinlogDriver
from pushsvc.config import Config, build_config
from pushsvc.demo.seed import SEED_CONTEXT, SEED_CURRENT_JOB, SEED_DISK, SEED_TIMEZONE, load_seed
from pushsvc.keys import changes_key, hub_key, poller_key, store_key
from pushsvc.store import Store
from pushsvc.store.mariadb import MariaDBStore
from pushsvc.store.writes import for_engine, insert_row

from ..binlog_server import PrivateMariaDB, binlog_off_database, other_seeded_database
from ..helpers import SECRET, finish_job_statements, rest_dashboard, rest_detail
from ..redisserver import RedisServer
from ..wsclient import LiveClient
from .test_convergence import assert_converged, run_convergence

CTX1 = str(SEED_CONTEXT["context_id"])
VM1 = str(SEED_CONTEXT["vm_name"])
JOB1 = str(SEED_CURRENT_JOB["id"])
TIMEOUT = 15.0
# Statements of the visibility barrier that open each batch's read (START TRANSACTION WITH CONSISTENT
# SNAPSHOT, SHOW STATUS: pushsvc/binlog/visibility.py); the read runs in that transaction and ends it.
VISIBILITY_BARRIER = 2
SAFETY_NET = 3600.0  # no safety-net read during a test: the binlog alone must do it
TOUCH = "UPDATE vm_replication_contexts SET power_state = %s WHERE context_id = %s"
Client = TestClient[web.Request, web.Application]
StartApp = Callable[..., Awaitable[tuple[web.Application, Client]]]
Live = tuple[web.Application, Client, MariaDBStore]  # the service, its client, the writer's store
FINISH_JOB = finish_job_statements(CTX1, JOB1, str(SEED_DISK["id"]))


def binlog_config(url: str, broker: dict[str, Any] | None = None, **poller: Any) -> Config:
    """A config following the binlog; ``poller`` overrides (no interval: the binlog mode's default)."""
    raw = {
        "database": {"url": url, "timezone": SEED_TIMEZONE},
        "auth": {"secret": SECRET},
        "poller": {"source": "binlog", **poller},
        "broker": broker or {},
    }
    return build_config(raw, {})


def driver(app: web.Application) -> BinlogDriver:
    changes = app[changes_key]
    assert changes is not None, "poller.source is not binlog"
    return changes


async def streaming(changes: BinlogDriver) -> None:
    """Until ``changes`` follows the binlog (its stream connected and the first read done)."""
    await changes.wait_until(lambda: changes.state.active == "binlog")


async def server_position(store: Store) -> str:
    async with store.snapshot() as reader:
        [(position,)] = await reader.fetch_all("SELECT @@GLOBAL.gtid_binlog_pos")
    return str(position)


async def execute(store: Store, *statements: tuple[str, list[Any]]) -> None:
    """Statements in one transaction."""
    async with store.transaction() as writer:
        for sql, args in statements:
            await writer.execute(sql, args)


@pytest.fixture
async def start_app(aiohttp_client: Any) -> StartApp:
    """Starts the service on a URL (quick binlog retries); returns (app, client)."""

    async def start(url: str, broker: dict[str, Any] | None = None, **poller: Any) -> tuple[web.Application, Client]:
        app = create_app(binlog_config(url, broker, **poller))
        driver(app).source_options.update(backoff_initial=0.05, backoff_max=0.5)
        client = await aiohttp_client(app)
        return app, client

    return start


@pytest.fixture
async def live_app(binlog_store: tuple[MariaDBStore, str], start_app: StartApp) -> Live:
    """(app, client, writer store): the seed rows in, the service following the binlog."""
    store, url = binlog_store
    await load_seed(store)
    app, client = await start_app(url, interval=SAFETY_NET)
    changes = driver(app)
    async with asyncio.timeout(TIMEOUT):
        await changes.wait_until(lambda: changes.state.active == "binlog")
    return app, client, store


async def settle(app: web.Application, store: Store) -> None:
    """Until the service has handled every transaction committed so far."""
    position = await server_position(store)
    async with asyncio.timeout(TIMEOUT):
        await driver(app).wait_for_position(position)


async def watch(client: Client, token: str, *topics: str) -> LiveClient:
    live = await LiveClient.connect(client, token)
    for topic in topics:
        await live.subscribe(topic)
    return live


def new_messages(live: LiveClient, start: int, topic: str) -> list[dict[str, Any]]:
    return [message for message in live.log[start:] if message.get("topic") == topic]


async def readyz(client: Client) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    return response.status, await response.json()


async def metric(client: Client, name: str) -> float:
    text = await (await client.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_clients_converge_in_binlog_mode(
    binlog_store: tuple[MariaDBStore, str], start_app: StartApp, token: str, auth_headers: dict[str, str]
) -> None:
    """The convergence property (same seed, same clients, same checks) with changes from the binlog."""
    _, url = binlog_store
    app, client = await start_app(url, interval=SAFETY_NET)
    poller, changes = app[poller_key], driver(app)
    async with asyncio.timeout(TIMEOUT):
        await changes.wait_until(lambda: changes.state.active == "binlog")
    full_reads = poller.ticks
    kinds = await run_convergence(app, client, token, auth_headers, lambda: settle(app, app[store_key]))
    full_reads = poller.ticks - full_reads
    targeted = await metric(client, "pushsvc_targeted_reads_total")
    print(
        f"writes {sum(kinds.values())}, binlog batches {changes.batches}, targeted reads {targeted:.0f},"
        f" full reads {full_reads}"
    )
    # Nearly every burst was published by a targeted read; full reads come with subscriptions only
    # (13 subscribe bursts ask for one each, through the early tick and the test's own poll).
    assert targeted >= changes.batches * 0.9 and full_reads <= 30
    assert changes.state.active == "binlog" and changes.source is not None and changes.source.connects == 1


async def test_the_four_statement_finish_is_one_delta_per_topic(
    live_app: Live, token: str, auth_headers: dict[str, str]
) -> None:
    app, client, store = live_app
    live = await watch(client, token, "vm-contexts", f"vm-context/{VM1}")
    start = len(live.log)
    await execute(store, *FINISH_JOB)
    await settle(app, store)
    await live.catch_up(app[hub_key])
    dashboard = new_messages(live, start, "vm-contexts")
    detail = new_messages(live, start, f"vm-context/{VM1}")
    assert [m["type"] for m in dashboard] == ["delta"] and [m["type"] for m in detail] == ["delta"]
    assert dashboard[0]["patch"]["vm_contexts"][VM1]["current_status"] == "ready_for_failover"
    assert "current_job" not in live.document(f"vm-context/{VM1}")  # null: no current job
    await assert_converged(app, client, auth_headers, [live])


async def test_a_change_to_one_vm_rereads_only_that_vm(
    live_app: Live, binlog_server: PrivateMariaDB, token: str
) -> None:
    """One job's progress: one statement for that VM's dashboard row (and the read's ROLLBACK), not the table.

    Before it, in the same transaction, the visibility barrier's consistent snapshot
    (binlog/visibility.py): two statements that read no table.
    """
    app, client, store = live_app
    for index in range(30):
        await execute(
            store,
            (
                "INSERT INTO vm_replication_contexts (context_id, vm_name, vmware_vm_id, vm_path, vcenter_host,"
                " datacenter) VALUES (%s, %s, %s, '/p', 'vc', 'dc')",
                [f"ctx-extra-{index}", f"extra-{index:02d}", f"id-{index}"],
            ),
        )
    live = await watch(client, token, "vm-contexts", "vm-context/extra-07")
    await settle(app, store)
    await app[poller_key].wait_idle()  # the early ticks the subscriptions asked for are done
    service = app[store_key]
    monitor = binlog_server.connect()
    try:
        with monitor.cursor() as cursor:
            cursor.execute("SET GLOBAL log_output = 'TABLE'")
            cursor.execute("SET GLOBAL general_log = 1")
            cursor.execute("SELECT CONNECTION_ID()")
            [(monitor_id,)] = cursor.fetchall()
        for sql_args, expected_statements, with_children in (
            (
                ("UPDATE replication_jobs SET progress_percent = 42.5 WHERE id = %s", [JOB1]),
                VISIBILITY_BARRIER + 2,
                False,
            ),
            ((TOUCH, ["poweredOff", "ctx-extra-7"]), VISIBILITY_BARRIER + 5, True),
        ):
            with monitor.cursor() as cursor:
                cursor.execute("TRUNCATE TABLE mysql.general_log")
            start, before = len(live.log), service.statements
            writer = binlog_server.connect(database=store.url.database)
            try:
                with writer.cursor() as cursor:
                    cursor.execute(*sql_args)
                    cursor.execute("SELECT CONNECTION_ID()")
                    [(writer_id,)] = cursor.fetchall()
            finally:
                writer.close()
            with monitor.cursor() as cursor:
                cursor.execute("SELECT @@GLOBAL.gtid_binlog_pos")
                [(position,)] = cursor.fetchall()
            async with asyncio.timeout(TIMEOUT):
                await driver(app).wait_for_position(position)
            assert service.statements - before == expected_statements
            with monitor.cursor() as cursor:
                cursor.execute(
                    "SELECT argument FROM mysql.general_log WHERE command_type = 'Query' AND thread_id NOT IN (%s, %s)"
                    " ORDER BY event_time",
                    [monitor_id, writer_id],
                )
                sent = [bytes(row[0]).decode() if isinstance(row[0], bytes) else row[0] for row in cursor.fetchall()]
            # Everything the service sent to the database for this change.
            barrier = sent[:VISIBILITY_BARRIER]
            reads = [" ".join(sql.split()) for sql in sent[VISIBILITY_BARRIER:]]
            assert barrier == [
                "START TRANSACTION WITH CONSISTENT SNAPSHOT",
                "SHOW STATUS LIKE 'binlog_snapshot_%'",
            ]
            assert "FROM vm_replication_contexts c LEFT JOIN replication_jobs j" in reads[0]
            changed = CTX1 if not with_children else "ctx-extra-7"
            named = (
                "vm_name IN (SELECT t.vm_name FROM vm_replication_contexts t WHERE"
                f" t.context_id IN ('{changed}') OR t.vm_name IN ('{VM1 if not with_children else 'extra-07'}'))"
            )
            # That VM's name on the contexts, and on those whose last job is looked up: never the whole table.
            assert reads[0].endswith(f"WHERE c.{named} ORDER BY c.vm_name, c.context_id"), reads[0]
            assert f"FROM vm_replication_contexts n WHERE n.{named} ) newest" in reads[0], reads[0]
            assert [sql.split()[0] for sql in reads[1:]] == (["SELECT"] * 3 if with_children else []) + ["ROLLBACK"]
            await live.catch_up(app[hub_key])
            topics = [m["topic"] for m in live.log[start:]]
            assert topics == (["vm-contexts", "vm-context/extra-07"] if with_children else ["vm-contexts"])
    finally:
        with monitor.cursor() as cursor:
            cursor.execute("SET GLOBAL general_log = 0")
            cursor.execute("TRUNCATE TABLE mysql.general_log")
        monitor.close()


async def test_a_large_transaction(live_app: Live, token: str, auth_headers: dict[str, str]) -> None:
    """5,000 CBT rows in one transaction: one full read, one delta per topic."""
    app, client, store = live_app
    live = await watch(client, token, "vm-contexts", f"vm-context/{VM1}")
    targeted = await metric(client, "pushsvc_targeted_reads_total")
    start, ticks = len(live.log), app[poller_key].ticks
    await execute(
        store,
        (
            "INSERT INTO cbt_history (vm_context_id, job_id, disk_id, change_id, sync_type, created_at)"
            " SELECT %s, %s, CONCAT('disk-', seq), CONCAT('change/', seq), 'incremental', NOW(3) FROM seq_1_to_5000",
            [CTX1, JOB1],
        ),
    )
    await settle(app, store)
    await live.catch_up(app[hub_key])
    assert app[poller_key].ticks - ticks == 1  # the batch asked for a full read
    assert await metric(client, "pushsvc_targeted_reads_total") == targeted
    assert [m["type"] for m in new_messages(live, start, f"vm-context/{VM1}")] == ["delta"]
    assert new_messages(live, start, "vm-contexts") == []  # nothing the dashboard shows changed
    assert live.document(f"vm-context/{VM1}")["cbt_history"][0]["change_id"] == "change/5000"
    await assert_converged(app, client, auth_headers, [live])


async def test_an_update_of_the_current_job_reads_no_children(
    live_app: Live, token: str, auth_headers: dict[str, str]
) -> None:
    """Progress of a VM's current job: its detail's delta comes from the dashboard row alone.

    The job history leaves the current job out, and disks and CBT rows are
    other tables, so the three children statements are skipped; an update of
    one of the VM's older jobs (its history) reads them.
    """
    app, client, store = live_app
    older = {**SEED_CURRENT_JOB, "id": "job-older-1", "status": "completed", "progress_percent": 100.0}
    async with store.transaction() as writer:
        await insert_row(writer, "replication_jobs", for_engine(older, store.engine))
    live = await watch(client, token, "vm-contexts", f"vm-context/{VM1}")
    await settle(app, store)
    await app[poller_key].wait_idle()  # the early ticks the two subscriptions asked for are done
    service = app[store_key]
    for sql, args, statements, changed in (
        ("UPDATE replication_jobs SET progress_percent = 61.5 WHERE id = %s", [JOB1], 2, "current_job"),
        ("UPDATE replication_jobs SET status = 'failed' WHERE id = %s", ["job-older-1"], 5, "job_history"),
    ):
        start, before = len(live.log), service.statements
        await execute(store, (sql, args))
        await settle(app, store)
        assert service.statements - before == VISIBILITY_BARRIER + statements
        await live.catch_up(app[hub_key])
        (detail,) = new_messages(live, start, f"vm-context/{VM1}")
        assert changed in detail["patch"], detail
    assert live.docs[f"vm-context/{VM1}"]["current_job"]["progress_percent"] == 61.5
    assert live.document(f"vm-context/{VM1}") == await rest_detail(client, auth_headers, VM1)


async def test_writes_to_another_database_are_ignored(
    live_app: Live, binlog_server: PrivateMariaDB, token: str
) -> None:
    app, client, store = live_app
    live = await watch(client, token, "vm-contexts", f"vm-context/{VM1}")
    await settle(app, store)
    await app[poller_key].wait_idle()  # the early ticks the subscriptions asked for are done
    start, statements, batches = len(live.log), app[store_key].statements, driver(app).batches
    async with other_seeded_database(binlog_server) as other:
        await execute(other, (TOUCH, ["poweredOff", CTX1]), ("UPDATE replication_jobs SET progress_percent = 99", []))
        await execute(other, ("TRUNCATE TABLE cbt_history", []))
        await execute(other, *FINISH_JOB)
        # Then one write of ours: once it is handled, everything before it was too.
        await execute(store, (TOUCH, ["suspended", CTX1]))
        await settle(app, store)
        await live.catch_up(app[hub_key])
        assert driver(app).batches - batches == 1
        # The visibility barrier (2), then in its transaction our VM's row and children, and the ROLLBACK.
        assert app[store_key].statements - statements == VISIBILITY_BARRIER + 1 + 3 + 1
        messages = live.log[start:]
        assert [(m["type"], m["topic"]) for m in messages] == [
            ("delta", "vm-contexts"),
            ("delta", f"vm-context/{VM1}"),
        ]
        assert messages[0]["patch"]["vm_contexts"][VM1]["power_state"] == "suspended"


async def test_server_restart_mid_stream(
    live_app: Live, binlog_server: PrivateMariaDB, token: str, auth_headers: dict[str, str]
) -> None:
    """The source is lost, the service polls meanwhile, the stream comes back: converged, no restart of pushsvc."""
    app, client, store = live_app
    changes, poller = driver(app), app[poller_key]
    live = await watch(client, token, "vm-contexts", f"vm-context/{VM1}")
    await execute(store, (TOUCH, ["poweredOff", CTX1]))
    await settle(app, store)
    source = changes.source
    assert source is not None

    await asyncio.to_thread(binlog_server.stop)
    async with asyncio.timeout(TIMEOUT):
        await changes.wait_until(lambda: changes.state.active == "poll")
    assert str(changes.state.reason).startswith("binlog stream lost (") and poller.interval == 1.0
    status, body = await readyz(client)
    assert status == 503 and body["change_source"]["active"] == "poll"
    assert (await live.expect("status"))["database"] == "unavailable"

    await asyncio.to_thread(binlog_server.start)
    await store.close()  # the writer's pooled connections died with the server (it reconnects when used)
    # Written while the source is (most likely) still away: the resumed stream or the poll must bring it.
    await execute(store, (TOUCH, ["suspended", CTX1]), ("UPDATE replication_jobs SET progress_percent = 77", []))
    async with asyncio.timeout(TIMEOUT):
        await changes.wait_until(lambda: changes.state.active == "binlog")
    await settle(app, store)
    assert changes.source is source and source.connects == 2  # the same source reconnected by itself
    assert poller.interval == SAFETY_NET
    await live.catch_up(app[hub_key])
    assert live.document("vm-contexts")["vm_contexts"][VM1]["power_state"] == "suspended"
    await assert_converged(app, client, auth_headers, [live])
    status, body = await readyz(client)
    assert status == 200 and body["change_source"] == {"configured": "binlog", "active": "binlog"}

    await execute(store, (TOUCH, ["poweredOn", CTX1]))  # and nudges work again
    await settle(app, store)
    await live.catch_up(app[hub_key])
    assert live.document("vm-contexts")["vm_contexts"][VM1]["power_state"] == "poweredOn"


async def assert_falls_back(
    app: web.Application, client: Client, token: str, store: Store, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The requirement check named ``reason``: logged once, /readyz and /metrics say so, polling at 1 s works."""
    changes = driver(app)
    async with asyncio.timeout(TIMEOUT):
        await changes.wait_until(lambda: changes.requirements is not None and changes.requirements.answered)
    assert changes.state.describe() == {"configured": "binlog", "active": "poll", "reason": reason}
    assert changes.source is None and app[poller_key].interval == 1.0
    lines = [r.getMessage() for r in caplog.records if r.name == "pushsvc.changes" and r.levelno >= logging.WARNING]
    assert lines == [f"{reason}: polling every 1 s instead (poller.source: binlog)"]
    status, body = await readyz(client)
    assert status == 200 and body["change_source"] == {"configured": "binlog", "active": "poll", "reason": reason}
    assert await metric(client, 'pushsvc_change_source{source="poll"}') == 1
    assert await metric(client, 'pushsvc_change_source{source="binlog"}') == 0
    live = await watch(client, token, "vm-contexts")
    await execute(store, (TOUCH, ["suspended", CTX1]))
    delta = await live.expect("delta", timeout=5.0)  # the next poll, within a second
    assert delta["patch"]["vm_contexts"][VM1]["power_state"] == "suspended"


async def test_falls_back_to_polling_when_the_binlog_is_off(
    binlog_template: Path, tmp_path: Path, start_app: StartApp, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with binlog_off_database(binlog_template, tmp_path / "no-binlog", server_id=73) as (url, store):
        app, client = await start_app(url)
        reason = "binlog source needs log_bin=ON (the server's binary log is off); binlog_format=ROW (it is MIXED)"
        await assert_falls_back(app, client, token, store, reason, caplog)


async def test_falls_back_to_polling_without_the_grants(
    binlog_store: tuple[MariaDBStore, str],
    binlog_server: PrivateMariaDB,
    start_app: StartApp,
    token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, url = binlog_store
    await load_seed(store)
    database = store.url.database
    user = f"bl_live_{secrets.token_hex(4)}"
    binlog_server.execute(f"CREATE USER {user}@'%' IDENTIFIED BY 'pw'", f"GRANT SELECT ON {database}.* TO {user}@'%'")
    try:
        app, client = await start_app(binlog_server.database_url(database, user, "pw"))
        reason = (
            "binlog source needs the REPLICATION SLAVE grant;"
            " the BINLOG MONITOR grant (REPLICATION CLIENT before MariaDB 10.5.2)"
        )
        await assert_falls_back(app, client, token, store, reason, caplog)
    finally:
        binlog_server.execute(f"DROP USER {user}@'%'")


async def test_poll_mode_says_so_in_readyz(client: Client) -> None:
    status, body = await readyz(client)
    assert status == 200 and body["change_source"] == {"configured": "poll", "active": "poll"}


async def test_rest_and_live_agree_after_the_first_read(
    live_app: Live, token: str, auth_headers: dict[str, str]
) -> None:
    """The "connected" full read published what was there before the stream started."""
    app, client, _ = live_app
    live = await watch(client, token, "vm-contexts", f"vm-context/{VM1}")
    assert live.document("vm-contexts") == await rest_dashboard(client, auth_headers)
    assert live.document(f"vm-context/{VM1}") == await rest_detail(client, auth_headers, VM1)
    assert await metric(client, "pushsvc_binlog_batches_total") == driver(app).batches >= 1


async def test_only_the_cluster_leader_reads_the_binlog(
    binlog_store: tuple[MariaDBStore, str], redis_server: RedisServer, start_app: StartApp, token: str
) -> None:
    """Two instances on one Redis: the leader follows the binlog; the follower starts when it takes over."""
    store, url = binlog_store
    await load_seed(store)
    cluster = {"url": redis_server.url, "lease_ttl": 1.0}
    instances = [await start_app(url, cluster, interval=SAFETY_NET) for _ in range(2)]
    drivers = [driver(app) for app, _ in instances]
    waits = [asyncio.ensure_future(streaming(d)) for d in drivers]
    async with asyncio.timeout(TIMEOUT):
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for wait in pending:
        wait.cancel()
    leader = waits.index(next(iter(done)))
    (_, leader_client), (follower_app, follower_client) = instances[leader], instances[1 - leader]
    follower = driver(follower_app)
    assert follower.source is None and follower.requirements is None  # never even asked the database
    _, body = await readyz(follower_client)
    assert body["role"] == "follower" and body["change_source"] == {
        "configured": "binlog",
        "active": "none",
        "reason": "a cluster follower: the leader reads the database",
    }
    _, body = await readyz(leader_client)
    assert body["role"] == "leader" and body["change_source"] == {"configured": "binlog", "active": "binlog"}

    live = await watch(follower_client, token, "vm-contexts")
    await leader_client.close()  # the leader stops (its source with it) and releases the lease
    async with asyncio.timeout(TIMEOUT):
        await follower.wait_until(lambda: follower.state.active == "binlog")
    await execute(store, (TOUCH, ["suspended", CTX1]))
    await settle(follower_app, store)
    while live.document("vm-contexts")["vm_contexts"][VM1].get("power_state") != "suspended":
        await live.next()
