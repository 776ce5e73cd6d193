"""The poller and the fan-out: what a write in MariaDB becomes on every socket."""

from __future__ import annotations

import aiohttp
import pytest

from pushsvc.app import create_app
from pushsvc.demo.seed import SEED_CONTEXT, SEED_CURRENT_JOB, SEED_DISK, ms
from pushsvc.keys import hub_key, metrics_key, poller_key, store_key
from pushsvc.store.writes import for_engine, insert_row

from ..helpers import make_config, rest_dashboard, rest_detail
from ..wsclient import LiveClient

PGTEST1 = "vm-context/pgtest1"
JOB_ID = SEED_CURRENT_JOB["id"]
CONTEXT_ID = SEED_CONTEXT["context_id"]


async def execute(store, sql, args=()):
    async with store.transaction() as writer:
        return await writer.execute(sql, args)


async def assert_nothing_queued(live: LiveClient) -> None:
    """Nothing was sent before a pong: the outbox is FIFO, so a delta would come first."""
    await live.send({"type": "ping", "id": "barrier"})
    assert await live.next() == {"id": "barrier", "type": "pong"}


@pytest.fixture
async def watched(manual_app, seeded, token, auth_headers):
    """A client subscribed to the dashboard and to pgtest1, both snapshots received."""
    app, client = manual_app
    live = await LiveClient.connect(client, token)
    first = await _subscribe(app, live, "vm-contexts", id="d")
    second = await _subscribe(app, live, PGTEST1, id="p")
    assert (first["type"], first["id"], second["type"], second["id"]) == ("snapshot", "d", "snapshot", "p")
    return app, client, live


async def test_snapshots_equal_rest(watched, auth_headers):
    app, client, live = watched
    assert live.document("vm-contexts") == await rest_dashboard(client, auth_headers)
    assert live.document(PGTEST1) == await rest_detail(client, auth_headers, "pgtest1")
    summary = live.docs["vm-contexts"]["vm_contexts"]["pgtest1"]["current_job"]
    assert list(summary) == [
        "id",
        "status",
        "replication_type",
        "progress_percent",
        "current_operation",
        "bytes_transferred",
        "total_bytes",
        "transfer_speed_bps",
        "error_message",
        "vma_throughput_mbps",
        "vma_eta_seconds",
        "vma_last_poll_at",
        "updated_at",
    ]
    assert live.docs["vm-contexts"]["vm_contexts"]["pgtest2"]["current_job"] is None
    assert live.seqs == {"vm-contexts": 0, PGTEST1: 0}


async def test_progress_write_sends_only_changed_fields(watched, seeded):
    app, client, live = watched
    await execute(
        seeded,
        "UPDATE replication_jobs SET progress_percent = %s, bytes_transferred = %s, updated_at = %s WHERE id = %s",
        [51.5, 19906895872, ms("2025-09-09 12:12:10.5"), JOB_ID],
    )
    await app[poller_key].poll_once()
    dashboard, detail = await live.expect("delta"), await live.expect("delta")
    if dashboard["topic"] != "vm-contexts":
        dashboard, detail = detail, dashboard
    change = {"progress_percent": 51.5, "bytes_transferred": 19906895872, "updated_at": "2025-09-09T12:12:10.5+01:00"}
    assert dashboard == {
        "type": "delta",
        "topic": "vm-contexts",
        "epoch": live.epoch,
        "seq": 1,
        "patch": {"vm_contexts": {"pgtest1": {"current_job": change}}},
    }
    assert detail["seq"] == 1 and detail["patch"] == {"current_job": change}


async def test_identical_rewrite_sends_nothing(watched, seeded):
    app, client, live = watched
    async with seeded.snapshot() as reader:
        row = (
            await reader.fetch_all(
                "SELECT status, progress_percent, current_operation, bytes_transferred, vma_throughput_mbps, updated_at "
                "FROM replication_jobs WHERE id = %s",
                [JOB_ID],
            )
        )[0]
    await execute(
        seeded,
        "UPDATE replication_jobs SET status = %s, progress_percent = %s, current_operation = %s, "
        "bytes_transferred = %s, vma_throughput_mbps = %s, updated_at = %s WHERE id = %s",
        [*row, JOB_ID],
    )
    await app[poller_key].poll_once()
    await app[poller_key].poll_once()
    await assert_nothing_queued(live)
    assert app[hub_key].topics["vm-contexts"].seq == 0


async def test_timestamp_only_writes_send_just_that_field(watched, seeded):
    app, client, live = watched
    await execute(
        seeded,
        "UPDATE replication_jobs SET vma_last_poll_at = %s WHERE id = %s",
        [for_engine({"t": ms("2025-09-09 12:12:13")}, seeded.engine)["t"], JOB_ID],
    )
    await app[poller_key].poll_once()
    patches = {
        message["topic"]: message["patch"] for message in [await live.expect("delta"), await live.expect("delta")]
    }
    # vma_last_poll_at is in the dashboard's job summary too (issue 11: the GUI's stall mark reads it).
    assert patches == {
        "vm-contexts": {"vm_contexts": {"pgtest1": {"current_job": {"vma_last_poll_at": "2025-09-09T12:12:13+01:00"}}}},
        PGTEST1: {"current_job": {"vma_last_poll_at": "2025-09-09T12:12:13+01:00"}},
    }
    await execute(
        seeded,
        "UPDATE vm_replication_contexts SET updated_at = %s WHERE context_id = %s",
        [for_engine({"t": ms("2025-09-09 12:30:00")}, seeded.engine)["t"], CONTEXT_ID],
    )
    await app[poller_key].poll_once()
    patches = {
        message["topic"]: message["patch"] for message in [await live.expect("delta"), await live.expect("delta")]
    }
    assert patches == {
        "vm-contexts": {"vm_contexts": {"pgtest1": {"updated_at": "2025-09-09T12:30:00+01:00"}}},
        PGTEST1: {"context": {"updated_at": "2025-09-09T12:30:00+01:00"}},
    }


async def test_changes_within_one_second_are_all_seen(watched, seeded):
    """The context's updated_at has whole seconds; several writes in one second must all show."""
    app, client, live = watched
    pinned = for_engine({"t": ms("2025-09-09 11:48:50")}, seeded.engine)["t"]
    for runs in (3, 4, 5):
        await execute(
            seeded,
            "UPDATE vm_replication_contexts SET total_jobs_run = %s, updated_at = %s WHERE context_id = %s",
            [runs, pinned, CONTEXT_ID],
        )
        await app[poller_key].poll_once()
        await live.catch_up(app[hub_key])
        assert live.docs["vm-contexts"]["vm_contexts"]["pgtest1"]["total_jobs_run"] == runs
        assert live.docs[PGTEST1]["context"]["total_jobs_run"] == runs


async def test_write_without_updated_at_is_seen(watched, seeded, auth_headers):
    app, client, live = watched
    await execute(
        seeded, "UPDATE vm_disks SET sync_progress_percent = 12.5, bytes_synced = 999 WHERE id = %s", [SEED_DISK["id"]]
    )
    await app[poller_key].poll_once()
    delta = await live.expect("delta")
    assert delta["topic"] == PGTEST1
    assert delta["patch"]["disks"][0]["sync_progress_percent"] == 12.5
    assert live.document(PGTEST1) == await rest_detail(client, auth_headers, "pgtest1")


async def test_cbt_insert_replaces_the_list(watched, seeded, auth_headers):
    app, client, live = watched
    async with seeded.transaction() as writer:
        await insert_row(
            writer,
            "cbt_history",
            for_engine(
                {
                    "vm_context_id": CONTEXT_ID,
                    "job_id": JOB_ID,
                    "disk_id": "disk-2000",
                    "change_id": "52 3c ec 11 9e 2c 4c 3d-87 4a c3 4e 85 f2 ea 95/446",
                    "sync_type": "incremental",
                    "sync_success": 1,
                    "created_at": ms("2025-09-09 12:20:00.5"),
                },
                seeded.engine,
            ),
        )
    await app[poller_key].poll_once()
    delta = await live.expect("delta")
    assert list(delta["patch"]) == ["cbt_history"] and len(delta["patch"]["cbt_history"]) == 2
    assert live.document(PGTEST1) == await rest_detail(client, auth_headers, "pgtest1")


async def test_detail_of_missing_vm_is_null_then_appears_then_goes(manual_app, seeded, token, auth_headers):
    app, client = manual_app
    live = await LiveClient.connect(client, token)
    snapshot = await _subscribe(app, live, "vm-context/newvm")
    assert snapshot["data"] is None
    context = {**SEED_CONTEXT, "context_id": "ctx-newvm-1", "vm_name": "newvm", "vmware_vm_id": "u-new"}
    async with seeded.transaction() as writer:
        await insert_row(writer, "vm_replication_contexts", for_engine(context, seeded.engine))
    await app[poller_key].poll_once()
    appeared = await live.expect("delta")
    assert appeared["seq"] == 1 and appeared["patch"]["context"]["vm_name"] == "newvm"
    assert live.document("vm-context/newvm") == await rest_detail(client, auth_headers, "newvm")
    await execute(seeded, "DELETE FROM vm_replication_contexts WHERE context_id = %s", ["ctx-newvm-1"])
    await app[poller_key].poll_once()
    gone = await live.expect("delta")
    assert gone["seq"] == 2 and gone["patch"] is None and live.docs["vm-context/newvm"] is None


async def test_cascade_delete_removes_dashboard_entry(watched, seeded, auth_headers):
    app, client, live = watched
    await execute(seeded, "DELETE FROM vm_replication_contexts WHERE context_id = %s", [CONTEXT_ID])
    await app[poller_key].poll_once()
    patches = {
        message["topic"]: message["patch"] for message in [await live.expect("delta"), await live.expect("delta")]
    }
    assert patches == {"vm-contexts": {"vm_contexts": {"pgtest1": None}}, PGTEST1: None}
    assert live.document("vm-contexts") == await rest_dashboard(client, auth_headers)


async def test_unsubscribe_stops_deltas(watched, seeded):
    app, client, live = watched
    await live.send({"type": "unsubscribe", "topic": PGTEST1, "id": 9})
    assert await live.next() == {"id": 9, "type": "unsubscribed", "topic": PGTEST1}
    await execute(seeded, "UPDATE replication_jobs SET vma_eta_seconds = 10 WHERE id = %s", [JOB_ID])
    await app[poller_key].poll_once()
    delta = await live.next()
    assert delta["topic"] == "vm-contexts"
    await assert_nothing_queued(live)
    assert PGTEST1 not in app[hub_key].topics


async def test_the_poller_forgets_cached_rows_when_the_last_watcher_leaves(watched):
    app, client, live = watched
    poller = app[poller_key]
    assert PGTEST1 in poller._detail_rows and poller._dashboard_rows  # what a tick compares against
    for topic in ("vm-contexts", PGTEST1):
        await live.send({"type": "unsubscribe", "topic": topic})
        await live.expect("unsubscribed")
    assert not app[hub_key].topics
    await poller.poll_once()  # nothing is watched: the tick reads nothing, but forgets
    assert poller._detail_rows == {} and poller._dashboard_rows == {}


async def _subscribe(app, live, topic, **extra):
    """Subscribe and return the answer, ticking the poller if the topic is new."""
    await live.send({"type": "subscribe", "topic": topic, **extra})
    await live.send({"type": "ping", "id": "subscribed"})  # replies are in order: the subscribe is handled
    answers = []
    while (message := await live.next()) != {"id": "subscribed", "type": "pong"}:
        answers.append(message)
    if not answers:
        await app[poller_key].poll_once()
        answers.append(await live.next())
    return answers[0]


async def _progress(store, app, value):
    await execute(store, "UPDATE replication_jobs SET progress_percent = %s WHERE id = %s", [value, JOB_ID])
    await app[poller_key].poll_once()


async def test_resume_replays_missed_deltas(manual_app, seeded, token):
    app, client = manual_app
    keeper = await LiveClient.connect(client, token)  # keeps the topic materialised
    await _subscribe(app, keeper, PGTEST1)
    live = await LiveClient.connect(client, token)
    snapshot = await _subscribe(app, live, PGTEST1)
    await _progress(seeded, app, 60.0)
    await live.expect("delta")
    seen = live.seqs[PGTEST1]
    await live.close()
    for value in (61.0, 62.0, 63.0):
        await _progress(seeded, app, value)
    again = await LiveClient.connect(client, token)
    again.docs, again.seqs = dict(live.docs), dict(live.seqs)
    await again.send(
        {"type": "subscribe", "topic": PGTEST1, "since": {"epoch": snapshot["epoch"], "seq": seen}, "id": "r"}
    )
    replayed = [await again.next() for _ in range(3)]
    assert [(m["type"], m["seq"], m["id"]) for m in replayed] == [("delta", seen + i, "r") for i in (1, 2, 3)]
    assert again.docs[PGTEST1]["current_job"]["progress_percent"] == 63.0
    await assert_nothing_queued(again)


@pytest.mark.parametrize("case", ["too old", "other epoch", "future seq"])
async def test_resume_without_history_sends_snapshot(aiohttp_client, database_url, seeded, token, case):
    app = create_app(make_config(database_url, websocket={"history_size": 2}), run_poller=False)
    client = await aiohttp_client(app)
    live = await LiveClient.connect(client, token)
    await _subscribe(app, live, PGTEST1)
    for value in (70.0, 71.0, 72.0, 73.0):
        await _progress(seeded, app, value)
    since = {
        "too old": {"epoch": live.epoch, "seq": 0},
        "other epoch": {"epoch": "old-epoch", "seq": 3},
        "future seq": {"epoch": live.epoch, "seq": 99},
    }[case]
    other = await LiveClient.connect(client, token)
    await other.send({"type": "subscribe", "topic": PGTEST1, "since": since})
    snapshot = await other.next()
    assert snapshot["type"] == "snapshot" and snapshot["seq"] == 4
    assert snapshot["data"]["current_job"]["progress_percent"] == 73.0


async def test_seq_is_continuous(watched, seeded):
    app, client, live = watched
    for step in range(20):
        await _progress(seeded, app, 50.0 + step / 10)
    await live.catch_up(app[hub_key])  # raises on any gap
    assert live.seqs == {"vm-contexts": 20, PGTEST1: 20}


async def test_queries_per_tick_do_not_depend_on_clients(manual_app, seeded, token, contracts):
    app, client = manual_app
    poller, store = app[poller_key], app[store_key]

    async def statements_per_tick() -> int:
        await _progress(seeded, app, 40.0)
        before = store.statements
        await _progress(seeded, app, 41.0)
        return store.statements - before

    clients = [await LiveClient.connect(client, token)]
    for topic in ("vm-contexts", PGTEST1, "vm-context/pgtest2"):
        await _subscribe(app, clients[0], topic)
    one = await statements_per_tick()
    # A session of its own: the test client's pool stops at 100 connections.
    async with aiohttp.ClientSession(**contracts.session_options(connector=aiohttp.TCPConnector(limit=0))) as session:
        for _ in range(199):
            ws = await session.ws_connect(client.make_url("/api/v1/ws"), headers={"Authorization": f"Bearer {token}"})
            extra = LiveClient(ws)
            await extra.expect("welcome")
            for topic in ("vm-contexts", PGTEST1, "vm-context/pgtest2"):
                await extra.send({"type": "subscribe", "topic": topic})
            clients.append(extra)
        await extra.send({"type": "ping", "id": "last"})
        await extra.expect("pong")  # every subscribe before it has been handled
        await poller.poll_once()
        many = await statements_per_tick()
        assert app[hub_key].subscription_count == 600
    assert one == many == 5  # contexts+jobs, history, disks, CBT, and the read-only commit


async def test_slow_reader_does_not_delay_others(aiohttp_client, database_url, seeded, token, auth_headers):
    config = make_config(database_url, websocket={"outbox_messages": 4, "slow_close_after": 0.5})
    app = create_app(config, run_poller=False)
    client = await aiohttp_client(app)
    fast = await LiveClient.connect(client, token)
    slow = await LiveClient.connect(client, token, max_msg_size=0)
    for live in (fast, slow):
        await _subscribe(app, live, "vm-contexts")
    # The slow client stops reading; a large payload fills the socket buffers quickly.
    await execute(seeded, "UPDATE replication_jobs SET current_operation = %s WHERE id = %s", ["x" * 200_000, JOB_ID])
    for step in range(60):
        await _progress(seeded, app, 10.0 + step)
        await execute(
            seeded, "UPDATE replication_jobs SET current_operation = %s WHERE id = %s", [str(step) * 200_000, JOB_ID]
        )
        await app[poller_key].poll_once()
        await fast.catch_up(app[hub_key])  # the fast client is never held up
    assert fast.document("vm-contexts") == await rest_dashboard(client, auth_headers)
    # The slow client now reads: it either converged through a fresh snapshot or was told 1013.
    try:
        await slow.catch_up(app[hub_key], timeout=10)
        assert slow.document("vm-contexts") == await rest_dashboard(client, auth_headers)
        assert app[metrics_key].resyncs._value.get() >= 1
    except AssertionError as error:
        assert "socket ended" in str(error) and slow.ws.close_code == 1013
