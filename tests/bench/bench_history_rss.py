#!/usr/bin/env python3
"""Resident memory after a burst of big deltas: the resume history bounded in bytes, and bounded only in count.

A fleet with big documents (600 VMs with 200-character names; 16 of them with
60 disks each), one client subscribed to the dashboard and to those 16
detail topics, and a burst of ticks in which every job's progress and every
disk's counters change: dashboard deltas of about 170 KB and detail deltas
of about 60 KB, every tick. The server's VmRSS (/proc) and its
``pushsvc_history_bytes`` gauge are read before the burst, at its peak,
right after it (the client still subscribed) and after the client has left
(every topic dropped).

Two runs: the defaults (``websocket.history_bytes`` 1 MiB per topic,
``history_total_bytes`` 16 MiB), and the history bounded only by its 256
deltas per topic, as before (both byte bounds set to 1 TiB).

    python tests/bench/bench_history_rss.py [--ticks 120] [--interval 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time

import aiohttp
import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import BenchDatabase, Server, admin, clean_up_on_signals, log, make_token, print_table

VMS = 600
DETAILED = 16  # VMs whose detail topic is subscribed ...
DISKS = 60  # ... each with this many disks


def vm_name(index: int) -> str:
    return f"vm-{index:04d}-" + "long-name-" * 19  # 198 characters


def populate(db: BenchDatabase) -> None:
    from pushsvc.demo import seed

    now = dt.datetime.utcnow().replace(microsecond=0)
    contexts, jobs, disks = [], [], []
    for index in range(VMS):
        name, context_id, job_id = vm_name(index), f"ctx-{index:04d}", f"job-{index:04d}"
        contexts.append(
            {
                **{key: value for key, value in seed.SEED_CONTEXT.items() if key != "current_job_id"},
                "context_id": context_id,
                "vm_name": name,
                "vm_path": f"/DC/vm/{name}",
                "vmware_vm_id": f"4205{index:04d}-f61f-a930-77c5-1e876786cb3c",
                "created_at": now,
                "updated_at": now,
            }
        )
        jobs.append(
            {
                **seed.SEED_CURRENT_JOB,
                "id": job_id,
                "vm_context_id": context_id,
                "source_vm_name": name,
                "created_at": now,
                "updated_at": now,
            }
        )
        for disk in range(DISKS if index < DETAILED else 0):
            row = {key: value for key, value in seed.SEED_DISK.items() if key != "id"}
            row.update(vm_context_id=context_id, job_id=job_id, disk_id=f"disk-{2000 + disk}", unit_number=disk)
            row.update(label=f"Hard disk {disk + 1}", created_at=now, updated_at=now)
            disks.append(row)
    with admin(db.name) as conn, conn.cursor() as cursor:
        for table, rows in (("vm_replication_contexts", contexts), ("replication_jobs", jobs), ("vm_disks", disks)):
            keys = list(rows[0])
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(keys)}) VALUES ({', '.join(['%s'] * len(keys))})",
                [[row[key] for key in keys] for row in rows],
            )
        cursor.execute("UPDATE vm_replication_contexts SET current_job_id = REPLACE(context_id, 'ctx-', 'job-')")


def write_tick(db: BenchDatabase, step: int) -> None:
    """Every job's progress and every disk's counters: every subscribed document changes."""
    with admin(db.name) as conn, conn.cursor() as cursor:
        cursor.execute(
            "UPDATE replication_jobs SET progress_percent = %s, bytes_transferred = %s", [step / 10, step * 4096]
        )
        cursor.execute("UPDATE vm_disks SET bytes_synced = %s, sync_progress_percent = %s", [step * 4096, step % 100])


async def measure(db: BenchDatabase, env: dict[str, str], ticks: int, interval: float) -> dict[str, float]:
    figures: dict[str, float] = {}
    with Server(env={"PUSHSVC_POLLER_INTERVAL": str(interval), **env}, database_url=db.svc_url) as server:
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {make_token()}"}
            ws = await session.ws_connect(f"{server.base_url}/api/v1/ws", headers=headers, max_msg_size=0)
            topics = ["vm-contexts"] + [f"vm-context/{vm_name(index)}" for index in range(DETAILED)]
            for topic in topics:
                await ws.send_str(orjson.dumps({"type": "subscribe", "topic": topic}).decode())
            received = {"delta": 0, "snapshot": 0, "bytes": 0}

            async def read() -> None:
                async for msg in ws:
                    message = orjson.loads(msg.data)
                    received[message["type"]] = received.get(message["type"], 0) + 1
                    received["bytes"] += len(msg.data)

            reader = asyncio.create_task(read())
            while received["snapshot"] < len(topics):
                await asyncio.sleep(0.1)
            await asyncio.sleep(2 * interval)
            figures["rss before"] = server.rss_kib() / 1024
            peak = figures["rss before"]
            started = time.monotonic()
            for step in range(1, ticks + 1):
                await asyncio.to_thread(write_tick, db, step)
                await asyncio.sleep(max(0.0, started + step * interval - time.monotonic()))
                peak = max(peak, server.rss_kib() / 1024)
            await asyncio.sleep(3 * interval)  # the last ticks reach the client
            figures["rss peak"] = peak
            figures["rss after burst"] = server.rss_kib() / 1024
            figures["history MiB"] = server.metrics().get("pushsvc_history_bytes", float("nan")) / 1048576
            figures["deltas"] = received["delta"]
            figures["MB received"] = received["bytes"] / 1e6
            await ws.close()
            reader.cancel()
        await asyncio.sleep(2)  # the server drops the topics and their history
        figures["rss after leaving"] = server.rss_kib() / 1024
        figures["history MiB after leaving"] = server.metrics().get("pushsvc_history_bytes", float("nan")) / 1048576
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=120)
    parser.add_argument("--interval", type=float, default=0.25)
    args = parser.parse_args()
    clean_up_on_signals()
    runs = {
        "bytes bounded (defaults)": {},
        "count only (256 per topic)": {
            "PUSHSVC_WEBSOCKET_HISTORY_BYTES": str(1 << 40),
            "PUSHSVC_WEBSOCKET_HISTORY_TOTAL_BYTES": str(1 << 40),
        },
    }
    results = {}
    with BenchDatabase() as db:
        populate(db)
        for name, env in runs.items():
            log(f"{name}: {args.ticks} ticks every {args.interval} s")
            results[name] = asyncio.run(measure(db, env, args.ticks, args.interval))
            log(f"{name}: {results[name]}")
    columns = [
        "rss before",
        "rss peak",
        "rss after burst",
        "history MiB",
        "rss after leaving",
        "history MiB after leaving",
        "deltas",
        "MB received",
    ]
    print_table(
        f"Server memory after a burst of {args.ticks} ticks (MiB)",
        ["history", *columns],
        [[name, *(figures[column] for column in columns)] for name, figures in results.items()],
        notes=[
            f"{VMS} VMs with 200-character names; the dashboard and {DETAILED} detail topics ({DISKS} disks each)"
            " subscribed by one client; every job's progress and every disk's counters rewritten each tick.",
        ],
    )


if __name__ == "__main__":
    main()
