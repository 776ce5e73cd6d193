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

from pushsvc.binlog import BinlogSource, ChangeBatch
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
