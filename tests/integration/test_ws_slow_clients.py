"""Clients that stop reading, against ``run.py`` in its own process and MariaDB (issue 8, item 12).

A big dashboard (400 VMs with 200-character names, every job's progress
rewritten 20 times a second: deltas of about 100 KB per tick) goes to an
honest client and to clients with a 4 KB receive buffer that never read.
Asserted: the server closes each non-reader (1013) and its socket is gone
from the server process (its file descriptors are back to the baseline)
within ``slow_close_after`` plus the close grace plus a margin; the server's
memory stays bounded; the honest client sees every delta, without a gap and
without a stall.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import re
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from pushsvc.demo.seed import SEED_CONTEXT, SEED_CURRENT_JOB
from pushsvc.store.writes import for_engine, insert_row
from pushsvc.wsconn import CLOSE_GRACE

from ..helpers import make_token
from ..rawws import RawWebSocket, text
from ..serverprocess import SECRET, ServerProcess, environment

VMS = 400
SLOW_CLOSE_AFTER = 1.0
NON_READERS = 3


def vm_name(index: int) -> str:
    return f"vm-{index:04d}-" + "long-name-" * 19  # 198 characters


async def populate(store) -> None:
    """``VMS`` contexts, each with a replicating current job (the rows are shaped like the seed's pgtest1)."""
    now = dt.datetime(2026, 11, 28, 12, 0, 0)
    async with store.transaction() as writer:
        for index in range(VMS):
            name, context_id, job_id = vm_name(index), f"ctx-{index:04d}", f"job-{index:04d}"
            context = {key: value for key, value in SEED_CONTEXT.items() if key != "updated_at"}
            context.update(
                context_id=context_id,
                vm_name=name,
                vmware_vm_id=f"4205{index:04d}-f61f-a930-77c5-1e876786cb3c",
                vm_path=f"/DC/vm/{name}",
                current_job_id=None,
            )
            await insert_row(writer, "vm_replication_contexts", for_engine(context, store.engine))
            job = {**SEED_CURRENT_JOB, "id": job_id, "vm_context_id": context_id, "source_vm_name": name}
            job.update(created_at=now, updated_at=now, progress_percent=0.0)
            await insert_row(writer, "replication_jobs", for_engine(job, store.engine))
            await writer.execute(
                "UPDATE vm_replication_contexts SET current_job_id = %s WHERE context_id = %s", [job_id, context_id]
            )


async def keep_writing(store, stop: asyncio.Event) -> None:
    """Every job's progress moves, 20 times a second: every dashboard entry changes every tick."""
    step = 0
    while not stop.is_set():
        step += 1
        async with store.transaction() as writer:
            await writer.execute(
                "UPDATE replication_jobs SET progress_percent = %s, bytes_transferred = bytes_transferred + 4096",
                [step / 100],
            )
        await asyncio.sleep(0.05)  # the appliance's pace: the load under test


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class HonestClient:
    """Reads everything; records when each delta arrived and that every seq follows the last."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.arrivals: list[float] = []
        self.seq: int | None = None
        self.problems: list[str] = []
        self._arrived = asyncio.Event()

    async def deltas(self, count: int) -> None:
        """Wait until ``count`` deltas have arrived."""
        async with asyncio.timeout(10):
            while len(self.arrivals) < count:
                self._arrived.clear()
                await self._arrived.wait()

    async def run(self) -> None:
        async for msg in self.ws:
            message = orjson.loads(msg.data)
            if message["type"] == "snapshot":
                if self.seq is not None:
                    self.problems.append(f"resynced with a snapshot at seq {message['seq']}")
                self.seq = message["seq"]
            elif message["type"] == "delta":
                if message["seq"] != (self.seq or 0) + 1:
                    self.problems.append(f"seq gap: {self.seq} -> {message['seq']}")
                self.seq = message["seq"]
                self.arrivals.append(time.monotonic())
                self._arrived.set()


async def stall(port: int, topics: list[str]) -> RawWebSocket:
    """A client with a 4 KB receive buffer that subscribes and then reads nothing, ever."""
    ws = await RawWebSocket.connect(port, headers={"Authorization": f"Bearer {make_token(secret=SECRET)}"}, rcvbuf=4096)
    for topic in topics:
        await ws.send(text({"type": "subscribe", "topic": topic}))
    return ws


async def metric(session: aiohttp.ClientSession, port: int, name: str) -> float:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


@pytest.mark.parametrize("details", [0, 99], ids=["dashboard", "dashboard and 99 details"])
async def test_clients_that_stop_reading_are_closed_and_released(database_url, store, tmp_path, details):
    await populate(store)
    env = environment(
        tmp_path,
        PUSHSVC_POLLER_INTERVAL="0.1",
        PUSHSVC_WEBSOCKET_SLOW_CLOSE_AFTER=str(SLOW_CLOSE_AFTER),
        PUSHSVC_DATABASE_TIMEZONE="UTC",
        PUSHSVC_SERVER_ACCESS_LOG="false",
        PUSHSVC_WEBSOCKET_RATE_BURST="200",  # 100 subscribes at once are not what is under test
    )
    server = await ServerProcess.start("--database", database_url, env=env)
    stop_writing = asyncio.Event()
    writer = asyncio.create_task(keep_writing(store, stop_writing))
    stalled: list[RawWebSocket] = []
    try:
        await server.listening()
        pid, port = server.process.pid, server.port
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(
                f"http://127.0.0.1:{port}/api/v1/ws", headers={"Authorization": f"Bearer {make_token(secret=SECRET)}"}
            )
            assert orjson.loads((await ws.receive()).data)["type"] == "welcome"
            await ws.send_str(orjson.dumps({"type": "subscribe", "topic": "vm-contexts"}).decode())
            honest = HonestClient(ws)
            reading = asyncio.create_task(honest.run())
            await honest.deltas(5)  # deltas flow (about 100 KB each)
            baseline_fds, baseline_rss = fds(pid), rss_mib(pid)

            topics = ["vm-contexts"] + [f"vm-context/{vm_name(index)}" for index in range(details)]
            started = time.monotonic()
            stalled = [await stall(port, topics) for _ in range(NON_READERS)]
            assert fds(pid) == baseline_fds + NON_READERS
            # The server's sockets of the non-readers must go: nothing to await in another process, so look.
            deadline = started + SLOW_CLOSE_AFTER + 2 * CLOSE_GRACE + 5
            peak_rss = baseline_rss
            while fds(pid) > baseline_fds and time.monotonic() < deadline:
                peak_rss = max(peak_rss, rss_mib(pid))
                await asyncio.sleep(0.1)
            released_after = time.monotonic() - started
            assert fds(pid) == baseline_fds, f"non-readers' sockets still held after {released_after:.1f} s"

            # The honest client kept up: deltas every tick all along, no gap, no resync.
            await honest.deltas(len(honest.arrivals) + 5)
            during = [t for t in honest.arrivals if t >= started - 1]
            gaps = [later - earlier for earlier, later in itertools.pairwise(during)]
            assert not honest.problems, honest.problems
            assert max(gaps) < 1.0, f"the honest client waited {max(gaps):.2f} s for a delta"
            assert await metric(session, port, "pushsvc_slow_closes_total") == NON_READERS
            assert await metric(session, port, "pushsvc_websockets") == 1
            assert peak_rss - baseline_rss < 64, f"RSS grew from {baseline_rss:.0f} to {peak_rss:.0f} MiB"
            print(
                f"\n{NON_READERS} non-readers ({len(topics)} topics) released after {released_after:.1f} s;"
                f" server RSS {baseline_rss:.0f} MiB -> peak {peak_rss:.0f} MiB; largest gap for the honest"
                f" client {max(gaps) * 1000:.0f} ms"
            )
            await ws.close()
            await reading
    finally:
        stop_writing.set()
        await writer
        for ws_ in stalled:
            ws_.close()
        await server.stop()
        server.kill()
    log = await server.stderr()
    assert "Traceback" not in log and not re.search(r"\bERROR\b", log), log[-2000:]
