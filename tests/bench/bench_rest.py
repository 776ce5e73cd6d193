#!/usr/bin/env python3
"""REST: requests/s and latency of the list (100 VMs) and detail endpoints,
with and without ``If-None-Match``, driven by ``wrk`` (1 thread, 16 keep-alive
connections, 8 s each; a Lua script sets the bearer token and the ETag).

Nothing writes during the runs, so the ETag stays valid and every conditional
request is a 304 (checked before each run). A 304 still reads the database
and builds the body to hash it; it saves encoding on the wire and the
client's parse. Service CPU from /proc; statements per request from the
service login's USER_STATISTICS. wrk, MariaDB and pushsvc share the 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import BenchDatabase, Server, Window, clean_up_on_signals, log, make_token, print_table, raise_nofile

VMS = 100
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


def status_of(server: Server, path: str, token: str, etag: str | None) -> tuple[int, str, int]:
    headers = {"Authorization": f"Bearer {token}"}
    if etag:
        headers["If-None-Match"] = etag
    request = urllib.request.Request(server.base_url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("ETag", ""), len(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("ETag", ""), 0


def run(seconds: float, connections: int) -> None:
    clean_up_on_signals()
    raise_nofile()
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk not found (Debian package wrk)")
    token = make_token()
    rows = []
    with BenchDatabase() as db, tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(LUA)
        script.flush()
        db.populate(VMS, 20)
        with Server(database_url=db.svc_url) as server:
            for name, path in (
                ("list (100 VMs)", "/api/v1/vm-contexts"),
                ("detail", "/api/v1/vm-contexts/bench-vm-000"),
            ):
                status, etag, size = status_of(server, path, token, None)
                assert status == 200, status
                for conditional in (False, True):
                    if conditional:
                        check, _, _ = status_of(server, path, token, etag)
                        assert check == 304, check
                    env = dict(os.environ, BENCH_TOKEN=token, BENCH_ETAG=etag if conditional else "")
                    argv = [
                        wrk,
                        "-t1",
                        f"-c{connections}",
                        f"-d{seconds:g}s",
                        "--latency",
                        "-s",
                        script.name,
                        server.base_url + path,
                    ]
                    log(" ".join(argv))
                    with Window(server, db) as window:
                        output = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
                    result = parse_wrk(output)
                    log(f"{name} conditional={conditional}: {result}")
                    statements = window.statements("svc") / max(1, result["requests"])
                    cpu_per_request = 1e4 * window.cpu_percent / result["rps"] if result["rps"] else float("nan")
                    rows.append(
                        [
                            name,
                            "If-None-Match (304)" if conditional else "plain (200)",
                            "-" if conditional else f"{size:,}",
                            result["rps"],
                            result["p50"],
                            result["p99"],
                            window.cpu_percent,
                            cpu_per_request,
                            statements,
                            result["bad"] + (1 if result["socket_errors"] else 0),
                        ]
                    )
    print_table(
        f"REST: wrk, 1 thread, {connections} connections, {seconds:g} s per row",
        [
            "endpoint",
            "request",
            "body bytes",
            "requests/s",
            "p50 ms",
            "p99 ms",
            "service CPU %",
            "CPU us per request",
            "DB statements per request",
            "errors",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    run(args.seconds, args.connections)


if __name__ == "__main__":
    main()
