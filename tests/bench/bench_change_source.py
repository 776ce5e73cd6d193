#!/usr/bin/env python3
"""Change sources compared: poll at 1 s, poll at 250 ms and the binlog, in one run on one server.

    python tests/bench/bench_change_source.py [--sockets 1000,5000] [--duration 12] [--measure 15]
        [--modes ...] [--clients c,python] [--binlog-pacing 0.25]

All of them run against one private MariaDB with the binary log on
(tests/binlog_server.py; the shared server is not touched, and its binlog is
not ours to turn on), with the same 50 VMs, 20 of them replicating.

1. **Latency**, as bench_latency.py measures it: 19 jobs get appliance-like
   progress writes (each every 2 s), the 20th is the marker job; a marker
   process rewrites it at random moments (every 0.25-0.75 poll intervals; for
   the binlog, every 62-188 ms unless ``--binlog-pacing`` says otherwise)
   with a fresh ``vma_eta_seconds`` and records ``time.time()`` just before
   the autocommit UPDATE; every socket watches ``vm-contexts``. Each marker
   (or a later one) is timed twice per socket: when its bytes arrived at the
   client's socket (the kernel's receive timestamp; loadgen.py says why) and
   when the load process read them. Rows at 1,000 and 5,000 sockets, with
   each kind of load client (``--clients``): ``c`` is wsload.c (built with
   the system's cc), ``python`` the asyncio clients of loadgen.py, which
   take about a core between them at 5,000 sockets. ``binlog (2 instances)``
   is two pushsvc clustered on a private Redis, the sockets split evenly
   between them (the leader reads the binlog; the follower gets the deltas
   through Redis). ``floor (pre-encoded sends)`` is not pushsvc but
   baseline_server.py, which writes each marker to every socket the moment
   the marker process asks (``GET /send``, timed like the UPDATE), with 9.5
   background frames a second to every socket: the latency of the fan-out
   alone, the least any single-threaded server here could do.
2. **Database statements per second**, counted by MariaDB per login
   (``USER_STATISTICS`` of the service's own login: every statement it sent,
   transaction control and the binlog connection's included) with 100
   viewers each watching the dashboard and one VM's detail (all 50 VMs
   watched): idle (no writes), then while the appliance writes every 2 s to
   each of 20 jobs (10 autocommit UPDATEs/s), spread evenly over the 2 s or
   in one burst of 20 every 2 s. Poll at 1 s against binlog (one instance).

The machine is shared: the 1-minute load average is printed beside each row.
Load runs in 2 processes (the machine has 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_latency import latencies, run_markers  # type: ignore[import-not-found]
from benchlib import (  # type: ignore[import-not-found]
    REPO,
    BenchDatabase,
    Server,
    Window,
    Writer,
    clean_up_on_signals,
    log,
    make_token,
    parse_prometheus,
    percentile,
    print_table,
    raise_nofile,
)
from loadgen import MARKER_BASE, SocketFleet  # type: ignore[import-not-found]

sys.path.insert(0, str(REPO))

from tests.binlog_server import PrivateMariaDB, install_template
from tests.redisserver import RedisServer

VMS, ACTIVE = 50, 20
VIEWERS = 100
LOAD_PROCESSES = 2  # the machine has 2 cores
FLOOR = "floor (pre-encoded sends)"
BINLOG = {"PUSHSVC_POLLER_SOURCE": "binlog", "PUSHSVC_POLLER_INTERVAL": "10.0"}
# label: (environment, marker pacing in seconds (markers every 0.25-0.75 of it), instances)
MODES = {
    "poll 1 s": ({"PUSHSVC_POLLER_INTERVAL": "1.0"}, 1.0, 1),
    "poll 250 ms": ({"PUSHSVC_POLLER_INTERVAL": "0.25"}, 0.25, 1),
    "binlog": (BINLOG, 0.25, 1),
    "binlog (2 instances)": (BINLOG, 0.25, 2),
    # Not pushsvc: baseline_server.py writing each marker to every socket the moment it is asked.
    FLOOR: ({}, 0.25, 1),
}
BACKGROUND_RATE = 9.5  # the floor's stand-in for the 19 other jobs' deltas (one each every 2 s)


def load() -> float:
    return os.getloadavg()[0]


def change_source(server: Server) -> dict[str, str]:
    with urllib.request.urlopen(server.base_url + "/readyz", timeout=5) as response:
        state: dict[str, str] = json.loads(response.read())["change_source"]
    return state


def wait_for_source(server: Server, env: dict[str, str]) -> None:
    """Until the service uses the configured source (binlog: the stream is up; it polls meanwhile)."""
    wanted = "binlog" if env.get("PUSHSVC_POLLER_SOURCE") == "binlog" else "poll"
    deadline = time.monotonic() + 30
    while (state := change_source(server))["active"] != wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the service did not start using {wanted}: {state}")
        time.sleep(0.1)  # another process: nothing to await


def server_read_times(server: Server) -> str:
    """Where the service's time goes per change (BENCH_DEBUG): its read-diff-publish histograms."""
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=5) as response:
        values = parse_prometheus(response.read().decode())
    parts = []
    for name in ("pushsvc_targeted_read_duration_seconds", "pushsvc_poll_duration_seconds"):
        count = values.get(f"{name}_count", 0.0)
        if count:
            buckets = sorted(
                (float(key.split('le="')[1].rstrip('"}')), value)
                for key, value in values.items()
                if key.startswith(f"{name}_bucket") and "+Inf" not in key
            )
            p50 = next((le for le, seen in buckets if seen >= count / 2), float("inf"))
            p99 = next((le for le, seen in buckets if seen >= count * 0.99), float("inf"))
            mean = 1000 * values[f"{name}_sum"] / count
            parts.append(f"{name}: {count:.0f}, mean {mean:.1f} ms, p50 <= {p50 * 1000:g} ms, p99 <= {p99 * 1000:g} ms")
    return "; ".join(parts)


def get(server: Server, path: str) -> bytes:
    with urllib.request.urlopen(server.base_url + path, timeout=5) as response:
        body: bytes = response.read()
    return body


def send_markers(server: Server, pacing: float, duration: float, first: int) -> list[tuple[int, float, float]]:
    """The floor's markers: ``GET /send`` at the binlog rows' pacing; each timed just before its request."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    results = []
    value, end = first, time.monotonic() + duration
    try:
        while time.monotonic() < end:
            time.sleep(random.uniform(0.25, 0.75) * pacing)
            value += 1
            before = time.time()
            connection.request("GET", f"/send?value={value}")
            connection.getresponse().read()
            results.append((value, before, time.time()))
    finally:
        connection.close()
    return results


def wait_for_cluster(servers: list[Server], env: dict[str, str]) -> None:
    """Until one instance leads with the configured source and the others follow."""
    deadline = time.monotonic() + 30
    while True:
        states = [change_source(server) for server in servers]
        active = sorted(state["active"] for state in states)
        if active == sorted(["binlog"] + ["none"] * (len(servers) - 1)):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the instances did not settle: {states}")
        time.sleep(0.1)  # other processes: nothing to await


@contextlib.contextmanager
def services(db: BenchDatabase, env: dict[str, str], instances: int) -> Iterator[list[Server]]:
    """One pushsvc, or ``instances`` of them clustered on a private Redis (only the leader reads MariaDB)."""
    with contextlib.ExitStack() as stack:
        if env is MODES[FLOOR][0]:
            yield [stack.enter_context(Server([sys.executable, str(Path(__file__).with_name("baseline_server.py"))]))]
            return
        if instances == 1:
            server = stack.enter_context(Server(env=env, database_url=db.svc_url))
            wait_for_source(server, env)
            yield [server]
            return
        redis = RedisServer()
        redis.start()
        stack.callback(redis.close)
        cluster_env = {**env, "PUSHSVC_BROKER_URL": redis.url, "PUSHSVC_BROKER_LEASE_TTL": "3.0"}
        servers = [stack.enter_context(Server(env=cluster_env, database_url=db.svc_url)) for _ in range(instances)]
        wait_for_cluster(servers, env)
        yield servers


def latency_rows(
    db: BenchDatabase,
    marker_job: str,
    sockets: list[int],
    duration: float,
    token: str,
    modes: list[str],
    clients: tuple[str, ...],
    binlog_pacing: float,
) -> list[list[Any]]:
    rows = []
    first = MARKER_BASE
    for label, client in [(mode, client) for mode in modes for client in clients]:
        env, pacing, instances = MODES[label]
        if env is BINLOG or label == FLOOR:
            pacing = binlog_pacing
        with services(db, env, instances) as servers:
            fleets: list[SocketFleet] = []
            opened = 0
            try:
                for count in sockets:
                    log(f"{label}: opening {count - opened} more sockets (to {count}, {client} clients)")
                    share, extra = divmod(count - opened, len(servers))
                    for index, server in enumerate(servers):  # the sockets split evenly, as a balancer would
                        fleet = SocketFleet(
                            max(1, LOAD_PROCESSES // len(servers)),
                            share + (1 if index < extra else 0),
                            host="127.0.0.1",
                            port=server.port,
                            token=token,
                            topics=lambda i: ("vm-contexts",),
                            track_markers=True,
                            client=client,
                        )
                        fleet.__enter__()
                        fleets.append(fleet)
                        opened += fleet.opened
                    time.sleep(2)
                    for f in fleets:
                        f.reset()
                    load_before = load()
                    with contextlib.ExitStack() as stack:
                        windows = [stack.enter_context(Window(server)) for server in servers]
                        if label == FLOOR:
                            get(servers[0], f"/background?rate={BACKGROUND_RATE}")
                            markers = send_markers(servers[0], pacing, duration, first)
                        else:
                            markers = run_markers(db, marker_job, pacing, duration, first)
                        time.sleep(pacing + 1.0)
                    first += 100_000
                    pairs, slowest, _, missing = latencies(markers, [a for f in fleets for a in f.markers("arrived")])
                    read, _, _, _ = latencies(markers, [a for f in fleets for a in f.markers("read")])
                    if os.environ.get("BENCH_DEBUG"):
                        for server in servers:
                            log(f"server: {server_read_times(server)}")
                        for index, fleet in enumerate(fleets):
                            own, own_last, own_first, _ = latencies(markers, fleet.markers("arrived"))
                            log(
                                f"fleet {index} (port {fleet.spec['port']}): p50 {1000 * percentile(own, 50):.0f} ms, "
                                f"p99 {1000 * percentile(own, 99):.0f} ms, first socket p50 "
                                f"{1000 * percentile(own_first, 50):.0f} ms, last socket p50 "
                                f"{1000 * percentile(own_last, 50):.0f} ms"
                            )
                    closed = sum(f.stats()["closed"] for f in fleets)
                    row = [
                        label,
                        client,
                        f"{opened:,}",
                        len(markers),
                        len(pairs),
                        1000 * percentile(pairs, 50),
                        1000 * percentile(pairs, 95),
                        1000 * percentile(pairs, 99),
                        1000 * percentile(slowest, 50),
                        1000 * percentile(slowest, 99),
                        1000 * max(slowest, default=float("nan")),
                        1000 * percentile(read, 50),
                        1000 * percentile(read, 99),
                        missing,
                        " + ".join(f"{window.cpu_percent:.0f}" for window in windows),
                        closed,
                        f"{load_before:.1f} / {load():.1f}",
                    ]
                    log(f"result: {row}")
                    rows.append(row)
            finally:
                for fleet in fleets:
                    fleet.__exit__(None, None, None)
    return rows


def statement_rows(db: BenchDatabase, jobs: list[str], measure: float, token: str, modes: list[str]) -> list[list[Any]]:
    rows = []
    for label in [mode for mode in modes if mode in ("poll 1 s", "binlog")]:
        env = MODES[label][0]
        with Server(env=env, database_url=db.svc_url) as server:
            wait_for_source(server, env)
            fleet = SocketFleet(
                2,
                VIEWERS,
                host="127.0.0.1",
                port=server.port,
                token=token,
                topics=lambda i: ("vm-contexts", f"vm-context/bench-vm-{i % VMS:03d}"),
            )
            with fleet:
                for state in ("idle", "writing, spread", "writing, bursts"):
                    writer = None if state == "idle" else Writer(db, jobs, period=2.0, burst=state.endswith("bursts"))
                    if writer is not None:
                        writer.__enter__()
                    try:
                        time.sleep(3)
                        fleet.reset()
                        load_before = load()
                        targeted = server.metrics().get("pushsvc_targeted_reads_total", 0.0)
                        with Window(server, db, writer) as window:
                            time.sleep(measure)
                        messages = fleet.stats()["messages"]
                        targeted = server.metrics().get("pushsvc_targeted_reads_total", 0.0) - targeted
                    finally:
                        if writer is not None:
                            writer.__exit__(None, None, None)
                    row = [
                        label,
                        state,
                        window.rate(window.statements("wr")),
                        window.rate(window.statements("svc")),
                        window.rate(window.user_delta("svc", "SELECT_COMMANDS")),
                        window.rate(window.user_delta("svc", "ROWS_READ")),
                        1000 * window.rate(window.user_delta("svc", "CPU_TIME")),
                        window.rate(messages) / VIEWERS,
                        window.cpu_percent,
                        window.rate(targeted),
                        f"{load_before:.1f} / {load():.1f}",
                    ]
                    log(f"result: {row}")
                    rows.append(row)
    return rows


def run(
    sockets: list[int],
    duration: float,
    measure: float,
    modes: list[str],
    parts: list[str],
    background: bool = True,
    clients: tuple[str, ...] = ("c", "python"),
    binlog_pacing: float = 0.25,
) -> None:
    clean_up_on_signals()
    raise_nofile()
    token = make_token()
    with tempfile.TemporaryDirectory(prefix="pushsvc-bench-binlog-") as tmp:
        template = install_template(Path(tmp) / "template")
        mariadb = PrivateMariaDB(Path(tmp) / "server", template, server_id=91)
        mariadb.start()
        try:
            with BenchDatabase(server_url=mariadb.url, replication=True) as db:
                jobs = db.populate(VMS, ACTIVE)
                latency, statements = [], []
                if "latency" in parts:
                    # The 19 other jobs' progress writes, unless --no-background (the markers alone).
                    with Writer(db, jobs[1:], period=2.0) if background else contextlib.nullcontext():
                        latency = latency_rows(db, jobs[0], sockets, duration, token, modes, clients, binlog_pacing)
                if "statements" in parts:
                    statements = statement_rows(db, jobs, measure, token, modes)
        finally:
            mariadb.stop()
    print_table(
        "Change-to-client latency: poll 1 s, poll 250 ms, binlog (dashboard topic, 50 VMs, 19 jobs progressing)",
        [
            "source",
            "clients",
            "sockets",
            "markers",
            "samples",
            "each socket p50 ms",
            "p95 ms",
            "p99 ms",
            "last socket p50 ms",
            "last socket p99 ms",
            "max ms",
            "read by load process p50 ms",
            "p99 ms",
            "missing",
            "service CPU %",
            "sockets closed",
            "load avg before / after",
        ],
        latency,
        [
            "Target for binlog: each-socket p99 <= 50 ms at 1,000 sockets, <= 100 ms at 5,000.",
            "Latency until a marker's bytes arrived at each client socket (kernel receive timestamp), and "
            "until the load process read them (2 processes, each working through its sockets one by one).",
        ],
    )
    print_table(
        f"Database statements per second by login: poll 1 s vs binlog ({VIEWERS} viewers, dashboard + one detail each)",
        [
            "source",
            "appliance",
            "writer stmts/s",
            "service stmts/s",
            "of which SELECT/s",
            "rows read/s",
            "DB CPU ms/s",
            "messages/s per viewer",
            "service CPU %",
            "targeted reads/s",
            "load avg before / after",
        ],
        statements,
        [
            f"Window {measure:.0f} s. Service statements: the service login's SELECT+UPDATE+OTHER commands in "
            "USER_STATISTICS (transaction control and the binlog connection included); rows read and DB CPU: "
            "that login's ROWS_READ and CPU_TIME. The writer rewrites each of 20 jobs every 2 s, one autocommit "
            "UPDATE each, spread evenly or as one burst of 20 back to back."
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", default="1000,5000")
    parser.add_argument("--duration", type=float, default=12.0, help="seconds of markers per latency row")
    parser.add_argument("--measure", type=float, default=15.0, help="seconds per statements row")
    parser.add_argument(
        "--modes",
        default="poll 1 s,poll 250 ms,binlog",
        help="a subset of: " + "; ".join(MODES) + " (the default: the first three)",
    )
    parser.add_argument("--parts", default="latency,statements")
    parser.add_argument(
        "--clients",
        default="c,python",
        help="load clients for the latency rows: c (wsload.c), python (loadgen.MinimalWebSocket) or both",
    )
    parser.add_argument(
        "--binlog-pacing",
        type=float,
        default=0.25,
        help="binlog rows: a marker every 0.25-0.75 of this many seconds (4: every 2 s on average, like the "
        "appliance's other jobs, so the dashboard changes 10 times a second in all instead of 17.5)",
    )
    parser.add_argument(
        "--no-background", action="store_true", help="latency with the markers alone (no other job progressing)"
    )
    args = parser.parse_args()
    modes = args.modes.split(",")
    unknown = set(modes) - MODES.keys()
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    sockets = [int(s) for s in args.sockets.split(",")]
    clients = tuple(args.clients.split(","))
    if set(clients) - {"c", "python"}:
        parser.error("--clients: c, python or both")
    parts = args.parts.split(",")
    run(sockets, args.duration, args.measure, modes, parts, not args.no_background, clients, args.binlog_pacing)


if __name__ == "__main__":
    main()
