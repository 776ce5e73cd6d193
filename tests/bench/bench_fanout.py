#!/usr/bin/env python3
"""Fan-out throughput: deltas delivered per second to 5,000 dashboard sockets.

pushsvc polls every 100 ms (the minimum) while a writer rewrites the progress
columns of 20 jobs every 200 ms (100 autocommit UPDATEs/s), so every tick has
a change and publishes one ``vm-contexts`` delta to every socket: at most
10 x 5,000 = 50,000 deltas/s. Delivered = frames counted by the load processes
(2 processes, one per core of this 2-core machine, minimal WebSocket clients).

The ceiling is ``baseline_server.py``: a minimal aiohttp loop that sends one
pre-encoded message of the same size as pushsvc's average delta to every
socket, round after round, with nothing else to do. Same clients, same machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import (
    BenchDatabase,
    Server,
    Window,
    Writer,
    clean_up_on_signals,
    log,
    make_token,
    print_table,
    raise_nofile,
)
from loadgen import SocketFleet

VMS, ACTIVE = 50, 20
HERE = os.path.dirname(os.path.abspath(__file__))


def measure(server: Server, fleet: SocketFleet, seconds: float) -> dict:
    fleet.reset()
    before = server.metrics() if server.pushsvc else {}
    with Window(server) as window:
        time.sleep(seconds)
    stats = fleet.stats()
    after = server.metrics() if before else {}
    delta = {key: after[key] - before.get(key, 0) for key in after} if before else {}
    delivered = window.rate(stats["messages"])
    cpu = window.cpu_percent
    return {
        "delivered": delivered,
        "cpu": cpu,
        "us_per_msg": 10_000 * cpu / delivered if delivered else float("nan"),
        "bytes": stats["bytes"] / max(1, stats["messages"]),
        "snapshots": stats["snapshots"],
        "published": window.rate(delta.get("pushsvc_deltas_published_total", float("nan"))),
        "ticks": window.rate(delta.get("pushsvc_poll_ticks_total", float("nan"))),
        "resyncs": delta.get("pushsvc_resyncs_total", float("nan")),
        "closed": stats["closed"],
        "open": stats["open"],
    }


def run(sockets: int, seconds: float) -> None:
    clean_up_on_signals()
    raise_nofile()
    token = make_token()
    with BenchDatabase() as db:
        jobs = db.populate(VMS, ACTIVE)
        env = {"PUSHSVC_POLLER_INTERVAL": "0.1"}
        with Writer(db, jobs, period=0.2), Server(env=env, database_url=db.svc_url) as server:
            log(f"pushsvc: opening {sockets} sockets")
            with SocketFleet(
                2, sockets, host="127.0.0.1", port=server.port, token=token, topics=lambda i: ("vm-contexts",)
            ) as fleet:
                time.sleep(2)
                push = measure(server, fleet, seconds)
                log(f"pushsvc: {push}")
    size = int(push["bytes"])
    baseline_env = {"BENCH_MESSAGE_BYTES": str(size)}
    with Server(argv=[sys.executable, os.path.join(HERE, "baseline_server.py")], env=baseline_env) as server:
        log(f"baseline: opening {sockets} sockets")
        with SocketFleet(
            2, sockets, host="127.0.0.1", port=server.port, token=None, topics=lambda i: ("vm-contexts",)
        ) as fleet:
            urllib.request.urlopen(server.base_url + "/start").read()
            time.sleep(2)
            base = measure(server, fleet, seconds)
            log(f"baseline: {base}")
    rows = [
        [
            "pushsvc (poll 100 ms)",
            f"{push['open']:,}",
            push["delivered"],
            push["ticks"],
            push["published"],
            size,
            push["cpu"],
            push["us_per_msg"],
            push["resyncs"],
            push["closed"],
        ],
        [
            "baseline: pre-encoded send loop",
            f"{base['open']:,}",
            base["delivered"],
            "-",
            "-",
            size,
            base["cpu"],
            base["us_per_msg"],
            "-",
            base["closed"],
        ],
    ]
    print_table(
        f"Fan-out throughput: {sockets:,} sockets on the dashboard topic",
        [
            "server",
            "sockets",
            "deltas delivered/s",
            "poll ticks/s",
            "deltas published/s",
            "bytes/delta",
            "service CPU %",
            "CPU us per delivered delta",
            "resyncs (slow-client snapshots)",
            "sockets closed",
        ],
        rows,
        [
            f"pushsvc / baseline: {push['delivered'] / base['delivered']:.2f}x the deliveries per second, "
            f"{base['us_per_msg'] / push['us_per_msg']:.2f}x the baseline's CPU efficiency (us per delta). "
            f"Ceiling for pushsvc at 10 ticks/s: {10 * sockets:,} deltas/s. Window {seconds:.0f} s each."
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    run(args.sockets, args.seconds)


if __name__ == "__main__":
    main()
