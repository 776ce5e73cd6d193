#!/usr/bin/env python3
"""REST: answers from memory against a trivial handler and against database reads; and the
database statements of 1,000 clients polling the detail every 5 s.

Part 1, throughput. Three servers run side by side on one database (100 VMs): pushsvc answering
from memory (``rest.live_ttl`` on, the default), pushsvc reading the database for every request
(``rest.live_ttl: 0``, what REST did before issue 13) and ``baseline_server.py``, a trivial aiohttp
handler returning the same bytes from memory. ``wrk`` (1 thread, 16 keep-alive connections,
``--seconds`` per row; a Lua script sets the bearer token and, for the conditional rows, the ETag
of a first request) runs against each in turn, for the list and a detail, plain and with
``If-None-Match`` (every conditional request is a 304, checked first), in ``--rounds`` rounds. The
three bodies are checked to be byte-identical first. Nothing writes during the runs. Service CPU
from /proc; statements per request from each pushsvc's own login (USER_STATISTICS). wrk, MariaDB
and the servers share the 2 cores.

Part 2, database load. A writer rewrites the progress columns of 20 jobs every 2 s. Against one
WebSocket viewer subscribed to every polled VM's detail topic (``--vms`` topics), ``--clients``
clients each GET one VM's detail every 5 s (random phase; client i polls VM i mod --vms), first
from memory; then ``--cold-clients`` clients (100 by default) against a pushsvc reading the
database. Statements/s of each service's own login over a ``--measure`` s window.

Why fewer clients for the database reads: 1,000 of them saturate that service (about 200 detail
reads/s of 5 statements each; requests past ``database.query_timeout`` fail) and load a MariaDB
that other work shares. The statements per request do not depend on the number of clients, so the
1,000-client rate is 10x the 100-client one; ``--cold-clients 1000`` measures it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
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
    percentile,
    print_table,
    raise_nofile,
)
from loadgen import GuiFleet, SocketFleet

HERE = os.path.dirname(os.path.abspath(__file__))
VMS = 100
ENDPOINTS = (("list (100 VMs)", "/api/v1/vm-contexts"), ("detail", "/api/v1/vm-contexts/bench-vm-000"))
POSITION = re.compile(r'^"[^":;]+:\d+"$')
LUA = """
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
local etag = os.getenv("BENCH_ETAG")
if etag ~= nil and etag ~= "" then
  wrk.headers["If-None-Match"] = etag
end
"""


def parse_wrk(text: str) -> dict:
    def duration(value: str, unit: str) -> float:
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    for label in ("50", "90", "99"):
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        result[f"p{label}"] = duration(*match.groups()) if match else float("nan")
    match = re.search(r"(\d+) requests in", text)
    result["requests"] = int(match.group(1)) if match else 0
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    result["bad"] = int(match.group(1)) if match else 0
    match = re.search(r"Socket errors: (.*)", text)
    result["socket_errors"] = match.group(1).strip() if match else ""
    return result


def fetch(server: Server, path: str, token: str, etag: str | None = None) -> tuple[int, str, bytes]:
    headers = {"Authorization": f"Bearer {token}"}
    if etag:
        headers["If-None-Match"] = etag
    request = urllib.request.Request(server.base_url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("ETag", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("ETag", ""), b""


def wait_live(server: Server, path: str, token: str) -> str:
    """Ask until the answer comes from memory (its ETag is a stream position); return that ETag."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, etag, _ = fetch(server, path, token)
        if status == 200 and POSITION.match(etag):
            return etag
        time.sleep(0.2)
    raise RuntimeError(f"{path} never came from memory")


def loadavg() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run_throughput(seconds: float, connections: int, rounds: int) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk not found (Debian package wrk)")
    token = make_token()
    rows = []
    started_load = loadavg()
    with BenchDatabase() as db, tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "bench.lua")
        with open(script, "w") as handle:
            handle.write(LUA)
        db.populate(VMS, 20)
        cold_url = db.add_login("cold")
        live_env = {"PUSHSVC_REST_LIVE_TTL": "3600"}
        with (
            Server(database_url=db.svc_url, env=live_env) as live,
            Server(database_url=cold_url, env={"PUSHSVC_REST_LIVE_TTL": "0"}) as cold,
        ):
            bodies = {}
            for name, path in ENDPOINTS:
                status, _, bodies[name] = fetch(cold, path, token)
                assert status == 200, (path, status)
            files = {}
            for key, (name, _) in zip(("BENCH_REST_LIST", "BENCH_REST_DETAIL"), ENDPOINTS):
                files[key] = os.path.join(tmp, key.lower())
                with open(files[key], "wb") as handle:
                    handle.write(bodies[name])
            baseline_argv = [sys.executable, os.path.join(HERE, "baseline_server.py")]
            with Server(argv=baseline_argv, env={**files, "BENCH_REST_ETAG": '"baseline"'}) as baseline:
                for name, path in ENDPOINTS:
                    wait_live(live, path, token)
                    for server in (live, cold, baseline):
                        assert fetch(server, path, token)[2] == bodies[name], (name, server.base_url)
                targets = (("trivial handler", baseline, None), ("pushsvc, memory", live, "svc"))
                targets += (("pushsvc, database", cold, "cold"),)
                for round_number in range(1, rounds + 1):
                    for name, path in ENDPOINTS:
                        for conditional in (False, True):
                            baseline_rps = None
                            for label, server, login in targets:
                                etag = fetch(server, path, token)[1] if conditional else ""
                                if conditional:
                                    assert fetch(server, path, token, etag)[0] == 304, (label, path)
                                env = dict(os.environ, BENCH_TOKEN=token, BENCH_ETAG=etag)
                                argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", script]
                                argv.append(server.base_url + path)
                                with Window(server, db if login else None) as window:
                                    output = subprocess.run(
                                        argv, env=env, capture_output=True, text=True, check=True
                                    ).stdout
                                result = parse_wrk(output)
                                log(f"round {round_number} {name} {label} conditional={conditional}: {result}")
                                if baseline_rps is None:
                                    baseline_rps = result["rps"]
                                statements = (
                                    window.statements(login) / max(1, result["requests"]) if login else float("nan")
                                )
                                rows.append(
                                    [
                                        round_number,
                                        name,
                                        "If-None-Match (304)" if conditional else "plain (200)",
                                        label,
                                        result["rps"],
                                        result["p50"],
                                        result["p99"],
                                        f"{result['rps'] / baseline_rps:.2f}x",
                                        window.cpu_percent,
                                        1e4 * window.cpu_percent / result["rps"] if result["rps"] else float("nan"),
                                        statements,
                                        result["bad"] + (1 if result["socket_errors"] else 0),
                                    ]
                                )
    sizes = ", ".join(f"{name} {len(body):,} bytes" for name, body in bodies.items())
    print_table(
        f"REST side by side: wrk, 1 thread, {connections} connections, {seconds:g} s per row",
        [
            "round",
            "endpoint",
            "request",
            "server",
            "requests/s",
            "p50 ms",
            "p99 ms",
            "vs trivial handler",
            "server CPU %",
            "CPU us per request",
            "DB statements per request",
            "errors",
        ],
        rows,
        [f"Bodies: {sizes}. Load average (1, 5, 15 min) at start: {started_load}; at end: {loadavg()}."],
    )


def run_load(clients: int, cold_clients: int, vms: int, measure: float) -> None:
    token = make_token()
    rows = []
    started_load = loadavg()
    with BenchDatabase() as db:
        jobs = db.populate(VMS, 20)
        cold_url = db.add_login("cold")
        topics = tuple(f"vm-context/bench-vm-{index:03d}" for index in range(vms))
        with (
            Writer(db, jobs, period=2.0) as writer,
            Server(database_url=db.svc_url) as live,
            Server(database_url=cold_url, env={"PUSHSVC_REST_LIVE_TTL": "0"}) as cold,
        ):
            modes = (
                (f"1 WebSocket viewer of the {vms} detail topics", live, "svc", "ws"),
                (f"{clients:,} clients polling REST, from memory", live, "svc", "rest"),
                (f"{cold_clients:,} clients polling REST, database reads (live_ttl 0)", cold, "cold", "rest"),
            )
            for label, server, login, kind in modes:
                count = cold_clients if server is cold else clients
                log(f"{label}: starting load")
                if kind == "ws":
                    fleet = SocketFleet(1, 1, host="127.0.0.1", port=server.port, token=token, topics=lambda i: topics)
                else:
                    fleet = GuiFleet(
                        2, count, base_url=server.base_url, token=token, vms=vms, paths=("detail",), period=5.0
                    )
                with fleet:
                    time.sleep(7.0)  # every client has started its 5 s cycle; first reads made topics live
                    fleet.reset()
                    with Window(server, db, writer) as window:
                        time.sleep(measure)
                    stats = fleet.stats()
                if kind == "ws":
                    client = f"{window.rate(stats['messages']):.1f} deltas/s"
                else:
                    latencies = stats["latencies"]
                    client = (
                        f"{window.rate(stats['requests']):.1f} req/s, p99 {1000 * percentile(latencies, 99):.0f} ms"
                    )
                    client += f", {stats['errors']} errors" if stats["errors"] else ""
                row = [
                    label,
                    window.rate(window.statements(login)),
                    window.rate(window.user_delta(login, "SELECT_COMMANDS")),
                    1000 * window.rate(window.user_delta(login, "CPU_TIME")),
                    window.cpu_percent,
                    window.rate(window.end["writer"] - window.start["writer"]),
                    client,
                ]
                log(f"{label}: {row}")
                rows.append(row)
    print_table(
        f"Database load: {clients:,} clients polling one detail every 5 s ({vms} VMs) vs one WebSocket viewer",
        [
            "mode",
            "service stmts/s",
            "of which SELECT/s",
            "DB CPU ms/s",
            "service CPU %",
            "writer stmts/s",
            "client side",
        ],
        rows,
        [
            f"Statements of each pushsvc's own login (USER_STATISTICS), transaction control included, over a "
            f"{measure:g} s window; poller interval 1 s. Load average at start: {started_load}; at end: {loadavg()}."
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)  # run_all.py keeps to its 10-minute budget
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--cold-clients", type=int, default=100)
    parser.add_argument("--vms", type=int, default=100)
    parser.add_argument("--measure", type=float, default=15.0)
    parser.add_argument("--only", choices=("throughput", "load"))
    args = parser.parse_args()
    clean_up_on_signals()
    raise_nofile()
    if args.only != "load":
        run_throughput(args.seconds, args.connections, args.rounds)
    if args.only != "throughput":
        run_load(args.clients, args.cold_clients, args.vms, args.measure)


if __name__ == "__main__":
    main()
