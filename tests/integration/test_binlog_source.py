"""The binlog change source against a private MariaDB with the binary log on (tests/binlog_server.py).

Every test gets its own database on that server and a source started after
the seed rows are in, so the first signal is the "connected" full re-read and
every later one comes from the test's own writes.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from pushsvc.binlog import (
    BinlogCoordinate,
    BinlogSource,
    ChangeBatch,
    SourceLost,
    check_requirements,
    resolve_contexts,
    wait_until_visible,
)
from pushsvc.config import parse_database_url
from pushsvc.demo.seed import SECOND_CONTEXT, SEED_CBT, SEED_CONTEXT, SEED_CURRENT_JOB, SEED_DISK, load_seed
from pushsvc.metrics import Metrics

from ..binlog_server import PrivateMariaDB, binlog_off_database, other_seeded_database
from ..helpers import finish_job_statements

CTX1 = SEED_CONTEXT["context_id"]
CTX2 = SECOND_CONTEXT["context_id"]
JOB1 = SEED_CURRENT_JOB["id"]
TIMEOUT = 15.0


async def next_signal(source: BinlogSource):
    async with asyncio.timeout(TIMEOUT):
        return await source.next()


async def next_batch(source: BinlogSource) -> ChangeBatch:
    signal = await next_signal(source)
    assert isinstance(signal, ChangeBatch), signal
    return signal


async def signals_until(source: BinlogSource, done) -> list:
    """Signals up to and including the first batch for which ``done(batch)`` holds."""
    seen = []
    while True:
        signal = await next_signal(source)
        seen.append(signal)
        if isinstance(signal, ChangeBatch) and done(signal):
            return seen


async def execute(store, *statements: tuple[str, list]) -> None:
    """Statements in one transaction."""
    async with store.transaction() as writer:
        for sql, args in statements:
            await writer.execute(sql, args)


def raw_execute(server: PrivateMariaDB, database: str, *statements: tuple[str, list], session: str = "") -> None:
    """Statements in one transaction on a connection of their own (``session``: a SET first)."""
    conn = server.connect(database=database, autocommit=False)
    try:
        with conn.cursor() as cursor:
            if session:
                cursor.execute(session)
            for sql, args in statements:
                cursor.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


def touch_context(context_id: str) -> tuple[str, list]:
    return "UPDATE vm_replication_contexts SET power_state = %s WHERE context_id = %s", [
        secrets.token_hex(4),
        context_id,
    ]


def metric_values(metrics: Metrics) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.render().decode().splitlines()
        if line.startswith("pushsvc_")
    }


@pytest.fixture
async def start_source(binlog_store):
    """Starts sources on this test's database (quick retries); closes them afterwards."""
    started: list[BinlogSource] = []

    async def start(url: str | None = None, **options) -> BinlogSource:
        options = {"backoff_initial": 0.05, "backoff_max": 0.5, **options}
        source = BinlogSource(parse_database_url(url or binlog_store[1]), **options)
        source.start()
        started.append(source)
        return source

    yield start
    for source in started:
        await source.close()
        assert source.state == "stopped"


@pytest.fixture
async def streaming(binlog_store, start_source):
    """(store, source, database name): the seed rows in, a source connected after them."""
    store, url = binlog_store
    await load_seed(store)
    source = await start_source(metrics=Metrics())
    first = await next_batch(source)
    assert first.full_reread == "binlog stream connected" and first.transactions == 0
    return store, source, parse_database_url(url).database


async def test_each_watched_table_names_its_context(streaming):
    store, source, _ = streaming
    job2 = "job-binlog-ctx2"
    cases = [
        ("context row", touch_context(CTX1), {CTX1}),
        ("job progress", ("UPDATE replication_jobs SET progress_percent = 51.5 WHERE id = %s", [JOB1]), {CTX1}),
        ("disk progress", ("UPDATE vm_disks SET bytes_synced = 4096 WHERE id = %s", [SEED_DISK["id"]]), {CTX1}),
        (
            "new job of the second VM",
            (
                "INSERT INTO replication_jobs (id, vm_context_id, source_vm_id, source_vm_name, source_vm_path,"
                " v_center_host, datacenter, replication_type) VALUES (%s, %s, 'vm', 'pgtest2', '/p', 'vc', 'dc', 'initial')",
                [job2, CTX2],
            ),
            {CTX2},
        ),
        (
            "new disk of the second VM",
            (
                "INSERT INTO vm_disks (vm_context_id, job_id, disk_id, vm_dk_path, size_gb) VALUES (%s, %s, 'disk-2000', '[ds] p.vmdk', 10)",
                [CTX2, job2],
            ),
            {CTX2},
        ),
        (
            "new CBT row of the second VM",
            (
                "INSERT INTO cbt_history (vm_context_id, job_id, disk_id, change_id, sync_type) VALUES (%s, %s, 'disk-2000', '', 'initial')",
                [CTX2, job2],
            ),
            {CTX2},
        ),
        ("job deleted", ("DELETE FROM replication_jobs WHERE id = %s", [job2]), {CTX2}),
    ]
    for name, statement, expected in cases:
        await execute(store, statement)
        batch = await next_batch(source)
        assert (name, batch.context_ids, batch.full_reread, batch.contexts_changed) == (name, expected, None, False)
        assert (batch.job_ids, batch.disk_ids, batch.cbt_ids, batch.transactions) == (
            frozenset(),
            frozenset(),
            frozenset(),
            1,
        )

    await execute(
        store,
        (
            "INSERT INTO vm_replication_contexts (context_id, vm_name, vmware_vm_id, vm_path, vcenter_host, datacenter)"
            " VALUES ('ctx-new', 'newvm', 'id-new', '/p', 'vc', 'dc')",
            [],
        ),
    )
    created = await next_batch(source)
    assert (created.context_ids, created.contexts_changed) == ({"ctx-new"}, True)
    await execute(store, ("DELETE FROM vm_replication_contexts WHERE context_id = 'ctx-new'", []))
    deleted = await next_batch(source)
    assert (deleted.context_ids, deleted.contexts_changed) == ({"ctx-new"}, True)

    values = metric_values(source.metrics)
    assert values['pushsvc_change_source{source="binlog"}'] == 1
    assert values['pushsvc_change_source{source="poll"}'] == 0
    assert values["pushsvc_binlog_events_total"] == source.events >= len(cases) + 2
    assert values["pushsvc_binlog_batches_total"] == len(cases) + 3  # with the "connected" one
    assert 0 <= source.lag_seconds < 5 and values["pushsvc_binlog_lag_seconds"] == source.lag_seconds


async def test_rows_without_their_context_are_placed_by_one_query(streaming, binlog_server):
    """binlog_row_image=MINIMAL leaves vm_context_id out: the keys are mapped by one query instead."""
    store, source, database = streaming
    minimal = "SET SESSION binlog_row_image = 'MINIMAL'"
    raw_execute(
        binlog_server,
        database,
        ("UPDATE replication_jobs SET progress_percent = 60 WHERE id = %s", [JOB1]),
        ("UPDATE vm_disks SET bytes_synced = 8192 WHERE id = %s", [SEED_DISK["id"]]),
        session=minimal,
    )
    batch = await next_batch(source)
    assert (batch.context_ids, batch.job_ids, batch.disk_ids, batch.full_reread) == (
        frozenset(),
        {JOB1},
        {SEED_DISK["id"]},
        None,
    )
    before = store.statements
    async with store.snapshot() as reader:
        targets = await resolve_contexts(reader, batch)
    assert (targets.context_ids, targets.read_all) == ({CTX1}, False)
    assert store.statements - before == 2  # the one SELECT and the read's ROLLBACK

    # A job of no VM still counts for the context whose current job it is.
    raw_execute(binlog_server, database, ("UPDATE replication_jobs SET vm_context_id = NULL WHERE id = %s", [JOB1]))
    moved = await next_batch(source)
    assert moved.context_ids == {CTX1}  # the before image still named it
    raw_execute(binlog_server, database, ("UPDATE replication_jobs SET progress_percent = 61 WHERE id = %s", [JOB1]))
    orphan = await next_batch(source)
    assert (orphan.context_ids, orphan.job_ids) == (frozenset(), {JOB1})
    async with store.snapshot() as reader:
        assert (await resolve_contexts(reader, orphan)).context_ids == {CTX1}

    # A row that moved to another VM, with an image that does not say which VM it left.
    raw_execute(
        binlog_server,
        database,
        ("UPDATE vm_disks SET vm_context_id = %s WHERE id = %s", [CTX2, SEED_DISK["id"]]),
        session=minimal,
    )
    moved_away = await next_batch(source)
    assert moved_away.full_reread == "a vm_disks row moved from a VM its image does not name"

    # A deleted row whose image did not say whose it was cannot be placed: read everything.
    raw_execute(binlog_server, database, ("DELETE FROM cbt_history WHERE id = %s", [SEED_CBT["id"]]), session=minimal)
    gone = await next_batch(source)
    assert gone.cbt_ids == {SEED_CBT["id"]}
    async with store.snapshot() as reader:
        targets = await resolve_contexts(reader, gone)
    assert targets.read_all and targets.reason == "1 changed rows are gone"


async def test_the_four_statement_finish_is_one_batch(binlog_store, start_source):
    """The appliance's "finish job" transaction (job, disk, CBT, context) is one batch, even with no window."""
    store, _ = binlog_store
    await load_seed(store)
    source = await start_source(window=0)
    assert (await next_batch(source)).full_reread is not None
    await execute(store, *finish_job_statements(CTX1, JOB1, str(SEED_DISK["id"])))
    finish = await next_batch(source)
    assert (finish.context_ids, finish.transactions, finish.full_reread) == ({CTX1}, 1, None)
    await execute(store, touch_context(CTX2))
    after = await next_batch(source)
    assert (after.context_ids, after.transactions) == ({CTX2}, 1)  # nothing of the finish was left over


async def test_a_batch_ends_where_its_transaction_ends_in_the_binlog(streaming, binlog_server):
    """``end`` is the binlog file and offset after the commit: what reads must see before they decide."""
    store, source, _ = streaming
    await execute(store, touch_context(CTX1))
    batch = await next_batch(source)
    with binlog_server.connect() as conn, conn.cursor() as cursor:
        cursor.execute("SHOW MASTER STATUS")
        file, offset = cursor.fetchone()[:2]
    assert batch.end == BinlogCoordinate(file, offset)


async def test_job_row_updates_are_told_apart(streaming):
    """A batch says which contexts only updates of job rows named (the read may then skip the children)."""
    store, source, _ = streaming
    progress = ("UPDATE replication_jobs SET progress_percent = 12.5 WHERE id = %s", [JOB1])
    await execute(store, progress)
    assert (await next_batch(source)).job_updates_only == {(CTX1, JOB1)}
    await execute(store, progress, touch_context(CTX1))  # the context row too: nothing to skip
    assert (await next_batch(source)).job_updates_only == frozenset()
    await execute(store, progress, ("UPDATE vm_disks SET sync_progress_percent = 3 WHERE id = %s", [SEED_DISK["id"]]))
    assert (await next_batch(source)).job_updates_only == frozenset()


async def test_reads_wait_until_a_batch_is_visible(streaming):
    """The consistent snapshot's binlog position says whether a read would see the batch.

    MariaDB sends a transaction's events before its engine commit makes the
    rows visible (binlog/visibility.py); a release build offers no way to hold
    a commit in between, so this checks the barrier against positions the
    server has and has not reached.
    """
    store, source, _ = streaming
    await execute(store, touch_context(CTX1))
    end = (await next_batch(source)).end
    assert end is not None
    assert await wait_until_visible(store, end, patience=2.0) == 0  # committed and acknowledged: visible
    assert await wait_until_visible(store, end._replace(offset=end.offset - 1), patience=2.0) == 0
    started = time.monotonic()
    assert await wait_until_visible(store, end._replace(offset=end.offset + 10**9), patience=0.1) is None
    assert 0.05 <= time.monotonic() - started < 1.0  # it kept asking, then gave up at its patience


async def test_a_quiet_stream_stays_connected(binlog_store, start_source):
    """Heartbeats keep an idle stream alive past its read timeout (three heartbeats)."""
    store, _ = binlog_store
    await load_seed(store)
    source = await start_source(heartbeat=0.2)
    assert (await next_batch(source)).full_reread is not None
    async with asyncio.timeout(TIMEOUT):
        while source.heartbeats < 4:  # 0.8 s of silence: past the 0.6 s read timeout
            await asyncio.sleep(0.05)
    await execute(store, touch_context(CTX1))
    batch = await next_batch(source)  # not a SourceLost and no "reconnected" re-read first
    assert (batch.context_ids, batch.full_reread, source.connects) == ({CTX1}, None, 1)


async def test_a_large_transaction_is_one_prompt_batch(streaming):
    store, source, _ = streaming
    started = time.perf_counter()
    await execute(
        store,
        (
            "INSERT INTO cbt_history (vm_context_id, job_id, disk_id, change_id, sync_type, created_at)"
            " SELECT %s, %s, CONCAT('disk-', seq), REPEAT('c', 60), 'incremental', NOW(3) FROM seq_1_to_5000",
            [CTX1, JOB1],
        ),
    )
    committed = time.perf_counter()
    batch = await next_batch(source)
    seconds = time.perf_counter() - committed
    assert batch.transactions == 1 and batch.full_reread == "a transaction of more than 500 rows"
    assert seconds < 3.0, f"5,000 rows took {seconds:.2f}s from commit to batch"
    await execute(store, touch_context(CTX2))
    after = await next_batch(source)
    assert (after.context_ids, after.full_reread, after.transactions) == ({CTX2}, None, 1)
    print(f"5,000-row transaction: commit {committed - started:.3f}s, commit to batch {seconds * 1000:.0f} ms")


async def test_other_databases_are_ignored(streaming, binlog_server):
    store, source, _ = streaming
    async with other_seeded_database(binlog_server) as other:
        await execute(other, touch_context(CTX1), ("UPDATE replication_jobs SET progress_percent = 99", []))
        await execute(other, ("TRUNCATE TABLE cbt_history", []))
        events = source.events
        await execute(store, touch_context(CTX2))
        batch = await next_batch(source)
        assert (batch.context_ids, batch.full_reread, batch.transactions) == ({CTX2}, None, 1)
        assert source.events - events == 1  # only our row event was decoded


async def test_statements_on_the_database_ask_for_a_full_read(streaming):
    store, source, _ = streaming
    await execute(store, ("TRUNCATE TABLE cbt_history", []))
    batch = await next_batch(source)
    assert batch.full_reread == "a statement on the database (DDL, TRUNCATE or statement-logged DML)"
    # A column added in the middle: names by position are learnt again, never guessed.
    await execute(store, ("ALTER TABLE replication_jobs ADD COLUMN note varchar(20) NULL AFTER id", []))
    assert (await next_batch(source)).full_reread is not None
    await execute(store, ("UPDATE replication_jobs SET progress_percent = 70 WHERE id = %s", [JOB1]))
    assert (await next_batch(source)).context_ids == {CTX1}


async def test_requirements_met(binlog_store):
    _, url = binlog_store
    report = await check_requirements(parse_database_url(url))
    assert report.ok and report.missing == () and "MariaDB" in report.server_version


async def test_missing_grants_are_named_and_the_source_falls_back(binlog_store, binlog_server, start_source):
    _, url = binlog_store
    database = parse_database_url(url).database
    suffix = secrets.token_hex(4)
    limited, tables_only, via_role, role = f"bl_sel_{suffix}", f"bl_tab_{suffix}", f"bl_role_{suffix}", f"r_{suffix}"
    binlog_server.execute(
        f"CREATE USER {limited}@'%' IDENTIFIED BY 'pw'",
        f"GRANT SELECT ON {database}.* TO {limited}@'%'",
        f"CREATE USER {tables_only}@'%' IDENTIFIED BY 'pw'",
        f"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO {tables_only}@'%'",
        *(
            f"GRANT SELECT ON {database}.{t} TO {tables_only}@'%'"
            for t in ("vm_replication_contexts", "replication_jobs", "vm_disks")
        ),
        f"CREATE ROLE {role}",
        f"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO {role}",
        f"CREATE USER {via_role}@'%' IDENTIFIED BY 'pw'",
        f"GRANT SELECT ON {database}.* TO {via_role}@'%'",
        f"GRANT {role} TO {via_role}@'%'",
        f"SET DEFAULT ROLE {role} FOR {via_role}@'%'",
    )
    try:
        report = await check_requirements(parse_database_url(binlog_server.database_url(database, limited, "pw")))
        assert report.missing == (
            "the REPLICATION SLAVE grant",
            "the BINLOG MONITOR grant (REPLICATION CLIENT before MariaDB 10.5.2)",
        )
        assert report.message.startswith("binlog source needs the REPLICATION SLAVE grant; the BINLOG MONITOR grant")
        report = await check_requirements(parse_database_url(binlog_server.database_url(database, tables_only, "pw")))
        assert report.missing == (f"SELECT on {database}.cbt_history",)
        report = await check_requirements(parse_database_url(binlog_server.database_url(database, via_role, "pw")))
        assert report.ok, report.missing

        states = []
        source = await start_source(binlog_server.database_url(database, limited, "pw"))
        source.on_state = lambda state, reason: states.append(state)
        lost = await next_signal(source)
        assert isinstance(lost, SourceLost) and "REPLICATION SLAVE" in lost.reason
        assert source.state == "lost" and states[0] == "lost"
    finally:
        binlog_server.execute(
            f"DROP USER {limited}@'%'", f"DROP USER {tables_only}@'%'", f"DROP USER {via_role}@'%'", f"DROP ROLE {role}"
        )


async def test_binlog_off_is_named_and_the_source_falls_back(binlog_template, tmp_path, start_source):
    async with binlog_off_database(binlog_template, tmp_path / "no-binlog", server_id=72) as (url, _):
        report = await check_requirements(parse_database_url(url))
        # The server's defaults, as on an appliance that never had the binlog on.
        assert report.missing == ("log_bin=ON (the server's binary log is off)", "binlog_format=ROW (it is MIXED)")
        assert report.message == (
            "binlog source needs log_bin=ON (the server's binary log is off); binlog_format=ROW (it is MIXED)"
        )
        source = await start_source(url)
        lost = await next_signal(source)
        assert isinstance(lost, SourceLost) and source.state == "lost"
        await source.close()


async def test_server_restart_mid_stream(streaming, binlog_server):
    """The source falls back, reconnects by itself, resumes after the last GTID it saw, asks for a full read."""
    store, source, database = streaming
    states = []
    source.on_state = lambda state, reason: states.append(state)
    await execute(store, touch_context(CTX1))
    assert (await next_batch(source)).context_ids == {CTX1}
    seen = source.position

    await asyncio.to_thread(binlog_server.stop)
    lost = await next_signal(source)
    assert isinstance(lost, SourceLost) and source.state == "lost"
    await asyncio.to_thread(binlog_server.start)
    # Written while the source is (most likely) still away: resuming from `seen` replays it.
    raw_execute(binlog_server, database, touch_context(CTX2))

    signals = await signals_until(source, lambda batch: CTX2 in batch.context_ids)
    assert any(isinstance(s, ChangeBatch) and s.full_reread == "binlog stream reconnected" for s in signals), signals
    assert not any(isinstance(s, SourceLost) for s in signals)
    assert source.connected_from == seen and source.connects == 2
    assert states[0] == "lost" and states[-1] == "streaming"
    assert metric_values(source.metrics)["pushsvc_binlog_fallbacks_total"] == 1

    raw_execute(binlog_server, database, touch_context(CTX1))
    after = await next_batch(source)
    assert (after.context_ids, after.full_reread) == ({CTX1}, None)


async def test_a_purged_position_starts_over_from_the_current_one(binlog_store, binlog_server, start_source):
    store, _ = binlog_store
    conn = binlog_server.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("FLUSH BINARY LOGS")
            cursor.execute("SHOW MASTER STATUS")
            current_file = cursor.fetchone()[0]
            cursor.execute("PURGE BINARY LOGS TO %s", [current_file])
            cursor.execute("SELECT @@GLOBAL.gtid_binlog_pos")
            now = cursor.fetchone()[0]
    finally:
        conn.close()
    source = await start_source(position="0-71-1")  # the server's first transaction: purged
    lost = await next_signal(source)
    assert isinstance(lost, SourceLost) and lost.reason.startswith("1236:")
    back = await next_batch(source)
    assert back.full_reread == "binlog stream connected" and source.connected_from == now
    await load_seed(store)
    assert CTX1 in (await next_batch(source)).context_ids
