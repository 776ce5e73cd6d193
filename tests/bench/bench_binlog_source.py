#!/usr/bin/env python3
"""Binlog source: a committed single-row UPDATE until its change batch reaches the event loop.

    python tests/bench/bench_binlog_source.py [--commits 500]

Starts a private MariaDB with the binary log on (tests/binlog_server.py; the
shared server is not touched), loads the seed rows into a database of its
own, starts a :class:`pushsvc.binlog.BinlogSource` and then, one at a time,
commits an autocommit UPDATE of one job's progress columns and waits for the
batch naming its VM. Two clocks per commit: from just before the statement is
sent ("send") and from the moment the commit is acknowledged ("ack"). The
commits are sequential, so each latency is one commit's alone; they run once
with the source's default coalescing window (5 ms) and once with none, which
shows what the window costs. A 5,000-row transaction is timed at the end.

This measures the source alone (binlog -> thread -> loop), not the read and
fan-out that follow it in pushsvc.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import REPO, log, percentile, print_table

sys.path.insert(0, str(REPO))

from pushsvc.binlog import BinlogSource, ChangeBatch, wait_until_visible
from pushsvc.config import DatabaseConfig, parse_database_url
from pushsvc.demo.seed import SEED_CONTEXT, SEED_CURRENT_JOB, load_seed
from pushsvc.store import open_store
from tests.binlog_server import PrivateMariaDB, install_template

PROGRESS = (
    "UPDATE replication_jobs SET progress_percent = %s, bytes_transferred = %s, transfer_speed_bps = %s,"
    " vma_eta_seconds = %s, updated_at = NOW(3) WHERE id = %s"
)
DATABASE = "pushsvc_bench_binlog"


async def next_batch(source: BinlogSource) -> ChangeBatch:
    async with asyncio.timeout(10):
        signal = await source.next()
    assert isinstance(signal, ChangeBatch), signal
    return signal


async def measure(store, url: str, commits: int, window: float) -> tuple[list[float], list[float]]:
    """Commit-to-batch latencies in seconds: (from send, from acknowledgement)."""
    source = BinlogSource(parse_database_url(url), window=window)
    source.start()
    try:
        first = await next_batch(source)
        assert first.full_reread is not None
        sent_latency, ack_latency = [], []
        for n in range(commits):
            sent = time.perf_counter()
            async with store.transaction() as writer:
                await writer.execute(
                    PROGRESS, [n % 100, n * 4096, 15_000_000 + n, 900 - n % 900, SEED_CURRENT_JOB["id"]]
                )
            acknowledged = time.perf_counter()
            batch = await next_batch(source)
            arrived = time.perf_counter()
            assert batch.context_ids == {SEED_CONTEXT["context_id"]}, batch
            sent_latency.append(arrived - sent)
            ack_latency.append(arrived - acknowledged)
        return sent_latency, ack_latency
    finally:
        await source.close()


async def visibility(store, url: str, commits: int) -> tuple[int, int, list[int]]:
    """Batches whose commit a read started at once would have missed (binlog/visibility.py).

    A writer commits progress UPDATEs back to back on its own connection while
    each batch, as soon as it arrives (no coalescing window), takes a
    consistent snapshot and compares its binlog position with the batch's end.
    Returns (batches, batches whose first snapshot did not see them yet, the
    waits each of those needed).
    """
    source = BinlogSource(parse_database_url(url), window=0)
    source.start()
    writer_store = open_store(DatabaseConfig(url=url))

    async def write() -> None:
        for n in range(commits):
            async with writer_store.transaction() as writer:
                await writer.execute(PROGRESS, [n % 100, n * 4096, 15_000_000 + n, n, SEED_CURRENT_JOB["id"]])

    try:
        await next_batch(source)
        writing = asyncio.create_task(write())
        batches, late, waits = 0, 0, []
        while True:
            try:
                async with asyncio.timeout(1.0 if writing.done() else 10.0):  # drained once the writer is done
                    batch = await source.next()
            except TimeoutError:
                break
            if not isinstance(batch, ChangeBatch) or batch.end is None:
                continue
            batches += 1
            needed = await wait_until_visible(store, batch.end, 2.0)
            if needed:
                late += 1
                waits.append(needed)
        await writing
        return batches, late, waits
    finally:
        await source.close()
        await writer_store.close()


async def large_transaction(store, url: str) -> tuple[float, float]:
    source = BinlogSource(parse_database_url(url))
    source.start()
    try:
        await next_batch(source)
        started = time.perf_counter()
        async with store.transaction() as writer:
            await writer.execute(
                "INSERT INTO cbt_history (vm_context_id, job_id, disk_id, change_id, sync_type, created_at)"
                " SELECT %s, %s, CONCAT('disk-', seq), REPEAT('c', 60), 'incremental', NOW(3) FROM seq_1_to_5000",
                [SEED_CONTEXT["context_id"], SEED_CURRENT_JOB["id"]],
            )
        acknowledged = time.perf_counter()
        batch = await next_batch(source)
        assert batch.transactions == 1
        return acknowledged - started, time.perf_counter() - acknowledged
    finally:
        await source.close()


async def run(commits: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-binlog-") as directory:
        base = Path(directory)
        log("installing a private MariaDB (binlog on)")
        server = PrivateMariaDB(base / "server", install_template(base / "template"), server_id=91)
        server.start()
        try:
            server.execute(f"CREATE DATABASE {DATABASE}")
            url = server.database_url(DATABASE)
            store = open_store(DatabaseConfig(url=url))
            await store.create_schema()
            await load_seed(store)
            rows = []
            for window in (0.005, 0.0):
                log(f"{commits} commits, window {window * 1000:.0f} ms")
                sent, acked = await measure(store, url, commits, window)
                for clock, values in (("send", sent), ("ack", acked)):
                    rows.append(
                        [
                            f"{window * 1000:.0f} ms",
                            clock,
                            len(values),
                            percentile(values, 50) * 1000,
                            percentile(values, 99) * 1000,
                            max(values) * 1000,
                        ]
                    )
            commit, to_batch = await large_transaction(store, url)
            log(f"visibility: {commits} commits back to back")
            batches, late, waits = await visibility(store, url, commits)
            await store.close()
        finally:
            server.stop()
    print_table(
        "Binlog source: commit to change batch (single-row UPDATEs, one at a time)",
        ["window", "from", "commits", "p50 ms", "p99 ms", "max ms"],
        rows,
        [
            f"A 5,000-row transaction: commit {commit * 1000:.0f} ms, commit acknowledged to batch"
            f" {to_batch * 1000:.0f} ms (one batch, asking for a full read).",
            f"Visibility ({commits} commits back to back, no window): {late} of {batches} batches were not yet"
            f" visible to a consistent snapshot taken as they arrived; each then needed {sorted(waits)} waits"
            " (1 ms, doubling) before it was.",
            f"Load average at the end: {os.getloadavg()[0]:.2f}.",
        ],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(run(args.commits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
