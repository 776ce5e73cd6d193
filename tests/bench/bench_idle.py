#!/usr/bin/env python3
"""Idle sockets: resident memory per socket and the CPU cost of heartbeats.

10,000 WebSocket sockets, each authenticated (bearer header) and subscribed to
the dashboard (``vm-contexts``, 50 VMs, no writes: nothing changes), opened by
2 load processes (minimal clients that answer pings). Open-file limits are
raised to the hard limit (``resource.setrlimit``) for the server and the
clients.

- Memory: the server's VmRSS (/proc) with one subscribed socket, then with all
  10,000 open and settled; per socket = the difference / 10,000.
- CPU: the server's utime+stime over a window with one socket (the poller's
  own cost, once a second) and over a window with 10,000 sockets and the
  heartbeat at 5 s (2,000 pings/s); the difference per ping, and what it comes
  to at the default 20 s heartbeat.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import BenchDatabase, Server, Window, clean_up_on_signals, log, make_token, print_table, raise_nofile
from loadgen import SocketFleet

VMS = 50


def run(sockets: int, heartbeat: float, seconds: float) -> None:
    clean_up_on_signals()
    limit = raise_nofile()
    token = make_token()
    with BenchDatabase() as db:
        db.populate(VMS, 20)
        env = {"PUSHSVC_WEBSOCKET_HEARTBEAT": str(heartbeat)}
        with Server(env=env, database_url=db.svc_url) as server:
            topics = lambda i: ("vm-contexts",)  # noqa: E731
            with SocketFleet(1, 1, host="127.0.0.1", port=server.port, token=token, topics=topics):
                time.sleep(3)
                rss_one = server.rss_kib()
                with Window(server) as quiet:
                    time.sleep(seconds)
                log(f"one socket: RSS {rss_one} KiB, CPU {quiet.cpu_percent:.2f}%")
                log(f"opening {sockets} sockets (nofile limit {limit})")
                started = time.monotonic()
                with SocketFleet(2, sockets, host="127.0.0.1", port=server.port, token=token, topics=topics) as fleet:
                    open_seconds = time.monotonic() - started
                    time.sleep(5)
                    rss_all = server.rss_kib()
                    with Window(server) as busy:
                        time.sleep(seconds)
                    stats = fleet.stats()
                    rss_end = server.rss_kib()
                    log(
                        f"{fleet.opened} sockets: RSS {rss_all} KiB (end {rss_end}), CPU {busy.cpu_percent:.2f}%, {stats}"
                    )
    opened = fleet.opened
    per_socket = (rss_all - rss_one) / opened
    pings = opened / heartbeat
    extra = (busy.cpu_percent - quiet.cpu_percent) / 100
    per_ping = 1e6 * extra / pings
    at_default = 100 * per_ping * opened / 20 / 1e6
    rows = [
        ["1 socket", 1, rss_one / 1024, "-", quiet.cpu_percent, "-", "-", "-"],
        [
            f"{opened:,} sockets, heartbeat {heartbeat:g} s",
            opened,
            rss_all / 1024,
            per_socket,
            busy.cpu_percent,
            pings,
            per_ping,
            at_default,
        ],
    ]
    print_table(
        f"Idle sockets: {opened:,} authenticated, subscribed, idle",
        [
            "state",
            "sockets",
            "server RSS MiB",
            "KiB per socket",
            "service CPU %",
            "pings/s",
            "CPU us per ping",
            "CPU % at 20 s heartbeat (computed)",
        ],
        rows,
        [
            f"Target <= 30 KiB per socket: {per_socket:.1f} KiB. Opened in {open_seconds:.1f} s; still open after the "
            f"{seconds:.0f} s window: {stats['open']:,} (closed {stats['closed']}). RSS at the window's end "
            f"{rss_end / 1024:.0f} MiB."
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=10000)
    parser.add_argument("--heartbeat", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    run(args.sockets, args.heartbeat, args.seconds)


if __name__ == "__main__":
    main()
