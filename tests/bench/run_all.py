#!/usr/bin/env python3
"""Run every benchmark (``bench_*.py`` here) one after another and print their tables.

    python tests/bench/run_all.py [--output FILE] [--only db_load,latency]

Each benchmark starts its own pushsvc process and MariaDB database and cleans
up after itself; the whole run takes about 6 minutes on the 2-core machine
described in docs/benchmarks.md (the budget is 10).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from benchlib import machine_description  # noqa: E402

ORDER = ["db_load", "latency", "fanout", "idle", "rest"]
BUDGET = 600.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="also write the tables to this file")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(ORDER))
    args = parser.parse_args()
    names = args.only.split(",") if args.only else ORDER
    started = time.monotonic()
    machine = machine_description()
    out = [
        "## Machine\n",
        "\n".join(f"- {key}: {value}" for key, value in machine.items()),
        f"- load average at start: {os.getloadavg()[0]:.2f}",
        "",
    ]
    print("\n".join(out), flush=True)
    failed = []
    for name in names:
        script = os.path.join(HERE, f"bench_{name}.py")
        left = BUDGET - (time.monotonic() - started)
        print(f"[run_all] bench_{name}.py ({left:.0f} s of the budget left)", file=sys.stderr, flush=True)
        began = time.monotonic()
        process = subprocess.Popen([sys.executable, script], stdout=subprocess.PIPE, text=True)
        try:
            stdout, _ = process.communicate(timeout=max(60, left))
        except subprocess.TimeoutExpired:
            # SIGINT first: the script's context managers stop its server and load
            # processes and drop its database and users.
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
            failed.append(f"{name} (timed out)")
            continue
        result = subprocess.CompletedProcess(process.args, process.returncode, stdout)
        took = time.monotonic() - began
        load = os.getloadavg()[0]
        text = (
            result.stdout.strip()
            + f"\n\n_bench_{name}.py: {took:.0f} s, 1-minute load average at the end {load:.2f}_\n"
        )
        print(text, flush=True)
        out.append(text)
        if result.returncode != 0:
            failed.append(f"{name} (exit {result.returncode})")
    total = time.monotonic() - started
    summary = f"_Total: {total:.0f} s (budget {BUDGET:.0f} s)._" + (f" Failed: {', '.join(failed)}" if failed else "")
    print(summary)
    out.append(summary)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write("\n".join(out) + "\n")
    return 1 if failed or total > BUDGET else 0


if __name__ == "__main__":
    sys.exit(main())
