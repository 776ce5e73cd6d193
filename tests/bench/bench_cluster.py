"""Cluster benchmarks: real run.py instances on a private Redis and one MariaDB database.

    python tests/bench/bench_cluster.py [--only statements,latency,failover,memory,fanout] [--seconds 20]

- statements: database statements per second with 1, 2 and 3 instances, each with clients
  (counted on the wire by one proxy per instance, so the followers' count is exact);
- latency: commit -> client latency p50/p99 on the leader and on a follower, and the extra
  hop (the same delta's arrival on the follower minus on the leader), at 1 s and 0.25 s;
- failover: leader SIGKILL -> next delta on a surviving instance, over 10 runs;
- memory: Redis memory per topic (document hash + delta stream) at the default history;
- fanout: dashboard deltas delivered per second to 1 instance x N sockets against 3 instances
  x N sockets each (``--fanout-sockets``, default 2,000), every instance polling or following
  at 100 ms while a writer changes a job every 10 ms, so every tick has a delta for every
  socket; one load process (loadgen.py's minimal clients) per instance.

Everything it starts (Redis, instances, proxies, the database) is private and removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))
sys.path.insert(1, str(Path(__file__).resolve().parent))  # loadgen, benchlib

import orjson  # noqa: E402

from pushsvc.config import parse_database_url  # noqa: E402
from pushsvc.store import open_store  # noqa: E402
from tests.conftest import create_database, drop_database  # noqa: E402
from tests.dbproxy import DatabaseProxy  # noqa: E402
from tests.helpers import make_config, make_token  # noqa: E402
from tests.instances import Cluster  # noqa: E402
from tests.integration.test_convergence import Appliance  # noqa: E402
from tests.redisserver import RedisServer  # noqa: E402
from tests.wsclient import LiveClient  # noqa: E402

from loadgen import MARKER_BASE, SocketFleet  # noqa: E402  # isort: skip

VMS = 40
ACTIVE = 20
WRITE_PAUSE = float(__import__("os").environ.get("BENCH_WRITE_PAUSE", "0.01"))  # latency: seconds between writes


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


async def progress_writes(
    store,
    job_ids: list[str],
    pause: float,
    stamps: dict[int, float] | None = None,
    column: str = "bytes_transferred",
    first_marker: int = 0,
) -> None:
    """Job progress rewrites, one every ``pause`` s, each setting ``column`` to a fresh marker value.

    ``stamps`` maps each marker to the wall-clock time its commit was acknowledged.
    """
    marker = first_marker or int(time.time() * 1000) * 1000
    rng = random.Random(3)
    while True:
        job_id = rng.choice(job_ids)
        marker += 1
        async with store.transaction() as writer:
            await writer.execute(
                f"UPDATE replication_jobs SET {column} = %s, updated_at = NOW(3) WHERE id = %s", [marker, job_id]
            )
        if stamps is not None:
            stamps[marker] = time.time()
        await asyncio.sleep(pause)


def _writer_main(url: str, job_ids: list[str], pause: float, conn, options: dict) -> None:
    async def run() -> None:
        store = open_store(make_config(url).database)
        stamps: dict[int, float] = {}
        task = asyncio.create_task(progress_writes(store, job_ids, pause, stamps, **options))
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()
        conn.send(stamps)

    asyncio.run(run())


class WriterProcess:
    """``progress_writes`` in a process of its own; ``stop()`` returns its stamps (wall-clock commit times)."""

    def __init__(self, url: str, job_ids: list[str], pause: float, **options) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_writer_main, args=(url, job_ids, pause, child, options), daemon=True)
        self.process.start()

    async def stop(self) -> dict[int, float]:
        self.conn.send("stop")
        stamps = await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)
        self.process.join(5)
        return stamps


class Bench:
    def __init__(self) -> None:
        self.url = create_database()
        self.server = parse_database_url(self.url)
        self.redis = RedisServer()
        self.redis.start()
        self.token = make_token()
        self.clusters: list[Cluster] = []
        self.proxies: list[DatabaseProxy] = []

    async def setup(self) -> None:
        self.store = open_store(make_config(self.url).database)
        await self.store.create_schema()
        self.appliance = Appliance(self.store, random.Random(7))
        async with self.store.transaction() as writer:
            for _ in range(VMS):
                await self.appliance.create_vm(writer)
            for vm in list(self.appliance.vms.values())[:ACTIVE]:
                await self.appliance.start_job(writer, vm)
        self.active = [vm for vm in self.appliance.vms.values() if vm.current_job]
        for _ in range(3):
            proxy = DatabaseProxy(self.server.host, self.server.port)
            await proxy.start()
            self.proxies.append(proxy)

    async def cluster(self, count: int, interval: float, lease_ttl: float = 0.0, namespace: str = "b") -> Cluster:
        lease_ttl = lease_ttl or 1.0
        name = self.url.rsplit("/", 1)[1]
        auth = self.url.split("//", 1)[1].split("@", 1)[0]
        urls = [f"mysql://{auth}@127.0.0.1:{proxy.port}/{name}" for proxy in self.proxies[:count]]
        cluster = Cluster(
            urls,
            self.redis.url,
            PUSHSVC_POLLER_INTERVAL=str(interval),
            PUSHSVC_BROKER_LEASE_TTL=str(lease_ttl),
            PUSHSVC_BROKER_NAMESPACE=f"{namespace}{len(self.clusters)}",
            PUSHSVC_SERVER_LOG_LEVEL="WARNING",
        )
        self.clusters.append(cluster)
        await cluster.start(lambda body: body.get("broker") == "ready")
        await cluster.leader()
        return cluster

    async def progress_writes(self, pause: float, stamps: dict[int, float] | None = None) -> None:
        """Job progress rewrites, one every ``pause`` s; ``stamps`` maps each marker value to its commit time."""
        await progress_writes(self.store, [vm.current_job for vm in self.active], pause, stamps)

    def progress_writer_process(self, pause: float, **options) -> WriterProcess:
        """The same writes from a process of its own, so they take nothing from the measuring clients' loop."""
        return WriterProcess(self.url, [vm.current_job for vm in self.active], pause, **options)

    async def close(self) -> None:
        for cluster in self.clusters:
            await cluster.close()
        for proxy in self.proxies:
            await proxy.cut()
        await self.store.close()
        self.redis.close()
        drop_database(self.url)


async def clients_on(instance, token: str, topics: list[str], count: int) -> list[LiveClient]:
    clients = []
    for _ in range(count):
        client = await LiveClient.connect(await instance.session(), token)
        for topic in topics:
            await client.subscribe(topic)
        clients.append(client)
    return clients


async def drain(clients: list[LiveClient], stop: asyncio.Event, on_message=None) -> None:
    async def one(client: LiveClient) -> None:
        while not stop.is_set():
            try:
                message = await client.receive(timeout=0.5)
            except TimeoutError:
                continue
            if on_message is not None:
                on_message(client, message, time.perf_counter())

    await asyncio.gather(*(one(client) for client in clients))


async def statements(bench: Bench, seconds: float) -> None:
    topics = ["vm-contexts"] + [f"vm-context/{vm.name}" for vm in bench.active[:3]]
    rows = []
    for count in (1, 2, 3):
        cluster = await bench.cluster(count, interval=1.0)
        clients = []
        for instance in cluster:
            clients += await clients_on(instance, bench.token, topics, 5)
        stop = asyncio.Event()
        drainer = asyncio.create_task(drain(clients, stop))
        writer = asyncio.create_task(bench.progress_writes(0.05))
        await asyncio.sleep(2)
        before = [proxy.commands["query"] for proxy in bench.proxies[:count]]
        await asyncio.sleep(seconds)
        after = [proxy.commands["query"] for proxy in bench.proxies[:count]]
        writer.cancel()
        stop.set()
        await drainer
        per_instance = [(a - b) / seconds for a, b in zip(after, before)]
        rows.append((count, sum(per_instance), per_instance))
        for client in clients:
            await client.close()
        await cluster.close()
    base = rows[0][1]
    print("\n## Database statements per second (1 s interval, 5 clients x 4 topics per instance)")
    print("| instances | statements/s (all) | per instance | vs 1 instance |")
    print("|---|---|---|---|")
    for count, total, per_instance in rows:
        shown = ", ".join(f"{value:.2f}" for value in per_instance)
        print(f"| {count} | {total:.2f} | {shown} | {total / base:.2f}x |")


async def latency(bench: Bench, seconds: float) -> None:
    print("\n## Change -> client latency, leader vs follower (ms)")
    print("| interval | clients on | samples | p50 | p99 | extra hop p50 | extra hop p99 |")
    print("|---|---|---|---|---|---|---|")
    for run, interval in enumerate((1.0, 0.25)):
        await latency_at(bench, interval, seconds, MARKER_BASE + 10_000_000 * run)


async def latency_at(bench: Bench, interval: float, seconds: float, first_marker: int) -> None:
    """One client on the leader and one on a follower, each in a load process of its own (loadgen.py).

    The writer (another process) sets a job's ``vma_eta_seconds`` to a fresh
    marker every ``BENCH_WRITE_PAUSE`` s; the clients note the wall-clock time
    a frame carrying a marker arrives, before any parsing. Latency: commit
    acknowledged -> first frame with the marker; extra hop: the same marker's
    first arrival on the follower minus on the leader (one sample per delta).
    """
    topics = ("vm-contexts", *(f"vm-context/{vm.name}" for vm in bench.active[:5]))
    cluster = await bench.cluster(2, interval=interval)
    leader = await cluster.leader()
    follower = next(instance for instance in cluster if instance is not leader)
    fleets: dict[str, SocketFleet] = {}
    try:
        for side, instance in (("leader", leader), ("follower", follower)):
            fleet = SocketFleet(
                1,
                1,
                host="127.0.0.1",
                port=instance.port,
                token=bench.token,
                topics=lambda i: topics,
                track_markers=True,
            )
            await asyncio.to_thread(fleet.__enter__)
            fleets[side] = fleet
        for fleet in fleets.values():
            await asyncio.to_thread(fleet.reset)
        writer = bench.progress_writer_process(WRITE_PAUSE, column="vma_eta_seconds", first_marker=first_marker)
        await asyncio.sleep(seconds)
        stamps = await writer.stop()
        await asyncio.sleep(interval + 0.5)
        first: dict[str, dict[int, float]] = {}
        for side, fleet in fleets.items():
            seen: dict[int, float] = {}
            for socket_markers in await asyncio.to_thread(fleet.markers):
                for marker, at in socket_markers:
                    seen[marker] = min(at, seen.get(marker, at))
            first[side] = seen
    finally:
        for fleet in fleets.values():
            await asyncio.to_thread(fleet.__exit__, None, None, None)
        await cluster.close()
    latencies = {
        side: [(at - stamps[marker]) * 1000 for marker, at in seen.items() if marker in stamps]
        for side, seen in first.items()
    }
    # One sample per delta: the markers of one delta share both arrival times.
    pairs = {(at, first["follower"][marker]) for marker, at in first["leader"].items() if marker in first["follower"]}
    hops = [(on_follower - on_leader) * 1000 for on_leader, on_follower in pairs]
    for side in ("leader", "follower"):
        values = latencies[side]
        hop = f"{pct(hops, 50):.2f} | {pct(hops, 99):.2f}" if side == "follower" else "- | -"
        print(f"| {interval} s | {side} | {len(values)} | {pct(values, 50):.1f} | {pct(values, 99):.1f} | {hop} |")
    print(f"|  | (extra hop over {len(hops)} deltas, max {max(hops, default=float('nan')):.2f} ms) | | | | | |")


async def failover(bench: Bench, runs: int) -> None:
    cluster = await bench.cluster(3, interval=0.25, lease_ttl=1.0)
    times, takeovers = [], []
    for _ in range(runs):
        leader = await cluster.leader()
        survivor = next(instance for instance in cluster if instance is not leader and instance.running)
        (client,) = await clients_on(survivor, bench.token, ["vm-contexts"], 1)
        writer = asyncio.create_task(bench.progress_writes(0.02))
        await client.expect("delta")
        await client.expect("delta")
        seq = client.seqs["vm-contexts"]
        killed = time.perf_counter()
        leader.kill()
        while client.seqs["vm-contexts"] == seq or client.log[-1]["type"] != "delta":
            await client.receive(timeout=15)
        times.append(time.perf_counter() - killed)
        assert "snapshot" not in [m["type"] for m in client.log[2:]]
        new_leader = await cluster.leader()
        takeovers.append(new_leader.name)
        writer.cancel()
        await client.close()
        leader.start()
        await leader.wait_ready(lambda body: body.get("broker") == "ready")
    print("\n## Failover: leader SIGKILL -> next delta on a surviving instance (lease_ttl 1.0 s, interval 0.25 s)")
    print(f"runs {runs}: median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s")
    print("each: " + ", ".join(f"{value:.2f}" for value in times))
    await cluster.close()


async def memory(bench: Bench) -> None:
    """Memory of each topic's keys after a full history of realistic deltas (256 at the default)."""
    cluster = await bench.cluster(1, interval=0.1, namespace="mem")
    topics = ["vm-contexts", f"vm-context/{bench.active[0].name}"]
    (client,) = await clients_on(cluster[0], bench.token, topics, 1)
    stop = asyncio.Event()
    drainer = asyncio.create_task(drain([client], stop))
    writer = asyncio.create_task(bench.progress_writes(0.005))
    redis = bench.redis.client()
    namespace = cluster[0].env["PUSHSVC_BROKER_NAMESPACE"]
    while min(redis.xlen(f"{namespace}:log:{topic}") for topic in topics) < 256:
        await asyncio.sleep(0.5)
        if redis.xlen(f"{namespace}:log:vm-contexts") >= 256:
            # The detail topic changes only when its own VM is written; steer the writer there.
            bench.active = [bench.active[0]]
    writer.cancel()
    bench.active = [vm for vm in bench.appliance.vms.values() if vm.current_job]  # as setup() left it
    stop.set()
    await drainer
    print(f"\n## Redis memory per topic ({VMS} VMs, {ACTIVE} replicating; history 256 deltas)")
    print("| topic | document (hash) | stream (256 deltas) | total | document bytes |")
    print("|---|---|---|---|---|")
    for topic in topics:
        doc = redis.memory_usage(f"{namespace}:doc:{topic}", samples=0)
        stream = redis.memory_usage(f"{namespace}:log:{topic}", samples=0)
        size = len(redis.hget(f"{namespace}:doc:{topic}", "doc"))
        print(
            f"| {topic.split('/')[0]} | {doc / 1024:.1f} KiB | {stream / 1024:.1f} KiB | {(doc + stream) / 1024:.1f} KiB | {size} |"
        )
    info = redis.info("memory")
    print(f"used_memory {info['used_memory'] / 2**20:.1f} MiB with these topics (and an otherwise empty Redis)")
    redis.close()
    await client.close()
    await cluster.close()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / __import__("os").sysconf("SC_CLK_TCK")


async def fanout(bench: Bench, sockets: int, seconds: float) -> None:
    """Deliveries per second: 1 instance x ``sockets`` against 3 instances x ``sockets`` each.

    Twice: every socket on the dashboard alone (at most 10 deltas a second per
    socket: the instances keep up, so this shows that the cluster adds nothing
    per socket), then on the dashboard and 5 detail topics whose VMs the writer
    changes every tick (up to 60 deltas a second per socket, more than one
    instance can send on this machine: the scale-out factor).
    """
    await fanout_rows(bench, sockets, seconds, details=0)
    await fanout_rows(bench, sockets, seconds, details=5)


async def fanout_rows(bench: Bench, sockets: int, seconds: float, details: int) -> None:
    written = bench.active
    if details:
        bench.active = written[:details]  # the writer changes exactly the watched VMs
    topics = ("vm-contexts", *(f"vm-context/{vm.name}" for vm in bench.active[:details]))
    rows = []
    for count in (1, 3):
        cluster = await bench.cluster(count, interval=0.1, namespace="fan")
        fleets: list[SocketFleet] = []
        writer = asyncio.create_task(bench.progress_writes(0.01))
        try:
            for instance in cluster:
                fleet = SocketFleet(
                    1,
                    sockets,
                    host="127.0.0.1",
                    port=instance.port,
                    token=bench.token,
                    topics=lambda i: topics,
                )
                await asyncio.to_thread(fleet.__enter__)
                fleets.append(fleet)
            await asyncio.sleep(2)
            for fleet in fleets:
                await asyncio.to_thread(fleet.reset)
            pids = [instance.process.pid for instance in cluster if instance.process is not None]
            cpu_before = [cpu_seconds(pid) for pid in pids]
            started = time.perf_counter()
            await asyncio.sleep(seconds)
            stats = [await asyncio.to_thread(fleet.stats) for fleet in fleets]
            elapsed = time.perf_counter() - started
            cpu = [100 * (cpu_seconds(pid) - before) / elapsed for pid, before in zip(pids, cpu_before)]
        finally:
            writer.cancel()
            for fleet in fleets:
                await asyncio.to_thread(fleet.__exit__, None, None, None)
            await cluster.close()
        delivered = sum(stat["messages"] for stat in stats) / elapsed
        opened = sum(stat["open"] for stat in stats)
        closed = sum(stat["closed"] for stat in stats)
        rows.append((count, opened, delivered, cpu, closed))
    bench.active = written
    base = rows[0][2]
    print(
        f"\n## Fan-out: deliveries per second, 1 vs 3 instances x {sockets:,} sockets"
        f" on {len(topics)} topic(s) each (interval 0.1 s)"
    )
    print(
        "| instances | sockets | deliveries/s | ceiling (10 ticks/s) | vs 1 instance | service CPU % per instance | closed |"
    )
    print("|---|---|---|---|---|---|---|")
    for count, opened, delivered, cpu, closed in rows:
        shown = ", ".join(f"{value:.0f}" for value in cpu)
        ceiling = 10 * opened * len(topics)
        print(
            f"| {count} | {opened:,} | {delivered:,.0f} | {ceiling:,} | {delivered / base:.2f}x | {shown} | {closed} |"
        )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="statements,latency,failover,memory,fanout")
    parser.add_argument("--fanout-sockets", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    bench = Bench()
    try:
        await bench.setup()
        for name in args.only.split(","):
            if name == "statements":
                await statements(bench, args.seconds)
            elif name == "latency":
                await latency(bench, args.seconds)
            elif name == "failover":
                await failover(bench, args.runs)
            elif name == "memory":
                await memory(bench)
            elif name == "fanout":
                await fanout(bench, args.fanout_sockets, args.seconds)
    finally:
        with contextlib.suppress(Exception):
            await bench.close()


if __name__ == "__main__":
    _ = orjson  # the clients decode with it
    asyncio.run(main())
