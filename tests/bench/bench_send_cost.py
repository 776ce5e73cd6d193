#!/usr/bin/env python3
"""The machine's floor for a fan-out: CPU per small TCP send on loopback, in C and in Python.

Every delta pushsvc delivers is one ``send`` to one socket, and on loopback
that system call also does the receiving end's TCP work. What one such send
costs is a property of the machine (kernel, hypervisor, CPU mitigations), not
of pushsvc, and it differs a lot between the machines these benchmarks have
run on. This measures it directly, in about a minute:

- ``sendcost.c`` (built with the system's cc): one process writes a
  delta-sized message to every socket, round after round; a forked reader
  either sleeps in ``epoll_wait`` (woken by the sends), polls every
  millisecond (never woken by a send), or never reads;
- the same loop in Python with ``socket.send`` (what asyncio's transport
  does for an idle socket), the reader never reading.

Multiply by the sockets to get the least CPU one delta's fan-out can take
here: at 5,000 sockets and 12 us a send, 60 ms of one core.

    python tests/bench/bench_send_cost.py [--sockets 1000,5000] [--rounds 40] [--bytes 380]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import log, print_table, raise_nofile
from loadgen import build_c

READERS = {0: "woken by each send (epoll_wait)", 1: "polling every 1 ms", 2: "never reads"}
PAUSE_US = 20_000  # between rounds, so that a reader that reads keeps up


def c_send_cost(binary: str, sockets: int, rounds: int, reader: int, size: int) -> dict[str, float]:
    output = subprocess.run(
        [binary, str(sockets), str(rounds), str(reader), str(PAUSE_US), str(size)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    return json.loads(output)


def python_send_cost(sockets: int, rounds: int, size: int) -> dict[str, float]:
    """``socket.send`` to every socket, round after round; a forked child holds the client ends unread."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    clients, servers = [], []
    for _ in range(sockets):
        clients.append(socket.create_connection(listener.getsockname()))
        server, _ = listener.accept()
        server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        servers.append(server)
    child = os.fork()
    if child == 0:  # the reader that never reads: it only keeps the client ends open
        for server in servers:
            server.close()
        signal.pause()
        os._exit(0)
    try:
        for client in clients:
            client.close()
        message = b"x" * size
        time.sleep(0.2)
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        for _ in range(rounds):
            for server in servers:
                server.send(message)
            time.sleep(PAUSE_US / 1e6)
        wall = time.monotonic() - started - rounds * PAUSE_US / 1e6
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        for server in servers:
            server.close()
        listener.close()
    sends = sockets * rounds
    system = after.ru_stime - before.ru_stime
    return {
        "cpu_us": (after.ru_utime - before.ru_utime + system) / sends * 1e6,
        "sys_us": system / sends * 1e6,
        "wall_us": wall / sends * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sockets", default="1000,5000")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--bytes", type=int, default=380, help="message size (a dashboard delta frame: 380)")
    args = parser.parse_args()
    raise_nofile()
    binary = str(build_c("sendcost.c"))
    rows = []
    for sockets in (int(count) for count in args.sockets.split(",")):
        for reader, label in READERS.items():
            log(f"C, {sockets} sockets, reader {label}")
            cost = c_send_cost(binary, sockets, args.rounds, reader, args.bytes)
            rows.append(["C send", label, f"{sockets:,}", cost["cpu_us"], cost["sys_us"], cost["wall_us"]])
        log(f"Python, {sockets} sockets")
        cost = python_send_cost(sockets, args.rounds, args.bytes)
        rows.append(["Python socket.send", READERS[2], f"{sockets:,}", cost["cpu_us"], cost["sys_us"], cost["wall_us"]])
    load = os.getloadavg()[0]
    print_table(
        f"CPU per {args.bytes}-byte TCP send on loopback ({args.rounds} rounds over every socket)",
        ["sender", "reader", "sockets", "CPU us per send", "of which system us", "wall us per send"],
        rows,
        [
            f"1-minute load average at the end: {load:.2f}. The sender runs alone; a fan-out of N sockets costs"
            " at least N x the CPU per send."
        ],
    )


if __name__ == "__main__":
    main()
