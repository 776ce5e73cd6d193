#!/usr/bin/env python3
"""Database load against viewers: WebSocket dashboards vs GUIs polling REST every 5 s.

50 VMs, 20 of them replicating: a writer process rewrites the ~12 progress
columns of each active job every 2 s (one autocommit UPDATE each, spread
evenly: 10 statements/s), as the appliance's poller does.

- push N: N WebSocket viewers, each subscribed to the dashboard (``vm-contexts``)
  and one VM's detail (``vm-context/bench-vm-<i mod 50>``), i.e. what a GUI
  shows; pushsvc polls once per second (the default).
- poll N: N simulated GUIs doing what the appliance's GUI does every 5 s: GET
  the list, then GET one VM's detail (random phase per GUI), against the API
  as it was before pushsvc kept REST documents live: every request reads the
  database (``rest.live_ttl: 0``);
- poll-memory N: the same GUIs against pushsvc's default, where a request keeps
  its topic live for ``rest.live_ttl`` seconds and the poller's reads answer it.

Statements are counted by MariaDB itself: ``INFORMATION_SCHEMA.USER_STATISTICS``
(userstat) for the service's own login (SELECT_COMMANDS + UPDATE_COMMANDS +
OTHER_COMMANDS, i.e. every statement it sent, transaction control included)
and the writer's login, separately from anything else on the server. The
global ``Questions`` and ``Com_select`` deltas are shown as well: they also
include the writer, the monitor's 2 statements per window, and any other
client of this MariaDB (other test suites on a shared machine), so
``Questions - writer - monitor`` is printed beside the per-user number.

Load runs in 2 processes (the machine has 2 cores; 1 process for N=1).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import (
    BenchDatabase,
    Server,
    Window,
    Writer,
    clean_up_on_signals,
    log,
    make_token,
    percentile,
    print_table,
    raise_nofile,
)
from loadgen import GuiFleet, SocketFleet

VMS, ACTIVE = 50, 20
# Each mode with its own server: polling against the database-reading API, then against the default.
MODES = {"push": {}, "poll": {"PUSHSVC_REST_LIVE_TTL": "0"}, "poll-memory": {}}


def run(counts: list[int], measure: float) -> None:
    clean_up_on_signals()
    raise_nofile()
    token = make_token()
    rows = []
    with BenchDatabase() as db:
        jobs = db.populate(VMS, ACTIVE)
        results: dict[tuple[str, int], dict] = {}
        for mode, env in MODES.items():
            with Writer(db, jobs, period=2.0) as writer, Server(env=env, database_url=db.svc_url) as server:
                time.sleep(1)
                for count in counts:
                    processes = 1 if count == 1 else 2
                    log(f"{mode} x{count}: starting load")
                    if mode == "push":
                        fleet = SocketFleet(
                            processes,
                            count,
                            host="127.0.0.1",
                            port=server.port,
                            token=token,
                            topics=lambda i: ("vm-contexts", f"vm-context/bench-vm-{i % VMS:03d}"),
                        )
                        settle = 3.0
                    else:
                        fleet = GuiFleet(processes, count, base_url=server.base_url, token=token, vms=VMS)
                        settle = 6.0  # every GUI has started its 5 s cycle
                    with fleet:
                        time.sleep(settle)
                        fleet.reset()
                        with Window(server, db, writer) as window:
                            time.sleep(measure)
                        stats = fleet.stats()
                    svc = window.statements("svc")
                    writer_statements = window.end["writer"] - window.start["writer"]
                    questions = window.global_delta("Questions")
                    row = {
                        "svc": window.rate(svc),
                        "svc_select": window.rate(window.user_delta("svc", "SELECT_COMMANDS")),
                        "writer": window.rate(writer_statements),
                        "writer_db": window.rate(window.statements("wr")),
                        "questions": window.rate(questions - writer_statements - Window.MONITOR_STATEMENTS),
                        "com_select": window.rate(window.global_delta("Com_select")),
                        "cpu": window.cpu_percent,
                        "db_cpu": 1000 * window.rate(window.user_delta("svc", "CPU_TIME")),
                        "opened": fleet.opened,
                    }
                    if mode == "push":
                        row["client"] = f"{window.rate(stats['messages']):.1f} msg/s"
                    else:
                        lat = stats["latencies"]
                        row["client"] = (
                            f"{window.rate(stats['requests']):.1f} req/s, p99 {1000 * percentile(lat, 99):.0f} ms"
                            + (f", {stats['errors']} errors" if stats["errors"] else "")
                        )
                    results[(mode, count)] = row
                    log(f"{mode} x{count}: {row}")
                    rows.append(
                        [
                            mode,
                            f"{count:,}" + ("" if row["opened"] == count else f" ({row['opened']} open)"),
                            row["svc"],
                            row["svc_select"],
                            row["db_cpu"],
                            row["questions"],
                            row["com_select"],
                            row["writer"],
                            row["cpu"],
                            row["client"],
                        ]
                    )
    notes = [
        "service stmts/s: the service login's SELECT+UPDATE+OTHER commands (USER_STATISTICS), transaction control "
        "included. DB CPU: that login's CPU_TIME in the database, ms per second. Questions/s: global Questions delta "
        "minus the writer's statements minus the monitor's 2; it also holds any other client of this MariaDB. "
        "writer stmts/s: the writer's own count (its login's USER_STATISTICS agrees). service CPU: utime+stime of the "
        f"pushsvc process from /proc, % of one core. Window {measure:.0f} s.",
    ]
    push_max = max(results[("push", n)]["svc"] for n in counts)
    push_min = min(results[("push", n)]["svc"] for n in counts)
    top = max(counts)
    ratio = results[("poll", top)]["svc"] / max(results[("push", top)]["svc"], 1e-9)
    memory = results[("poll-memory", top)]["svc"] / max(results[("push", top)]["svc"], 1e-9)
    notes.append(
        f"Push statements/s max/min over 1..{top:,} viewers: {push_max / push_min:.3f}x (target <= 1.1x). "
        f"Polling the database-reading API / push at {top:,}: {ratio:.0f}x (target >= 100x). "
        f"Polling pushsvc's default REST (documents kept live) / push: {memory:.2f}x."
    )
    print_table(
        "Database load: WebSocket viewers vs 5 s REST polling (50 VMs, 20 jobs progressing)",
        [
            "mode",
            "clients",
            "service stmts/s",
            "of which SELECT/s",
            "DB CPU ms/s",
            "Questions/s (global - writer)",
            "Com_select/s (global)",
            "writer stmts/s",
            "service CPU %",
            "client side",
        ],
        rows,
        notes,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,100,1000")
    parser.add_argument("--measure", type=float, default=15.0)
    args = parser.parse_args()
    run([int(c) for c in args.counts.split(",")], args.measure)


if __name__ == "__main__":
    main()
