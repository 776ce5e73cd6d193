#!/usr/bin/env python3
"""GUI performance: the dashboard in headless Chromium while 500 VMs progress every second.

    . .venv/bin/activate && python tests/bench/bench_gui.py [--vms 500] [--seconds 20]

What it does:

1. Creates a MariaDB database of its own, ``pushsvc_bench_gui_<hex>`` (dropped at
   the end), with the appliance schema and ``--vms`` VM contexts, each with a
   replicating current job.
2. Starts pushsvc (``run.py``, a process of its own) on it with
   ``poller.interval`` 1 s.
3. A writer thread plays the appliance: every second, one transaction with one
   ``UPDATE replication_jobs`` per job (progress, bytes, speed, ETA, times).
4. Opens the dashboard in Debian's headless Chromium (1280x800), signed in, and
   measures for ``--idle-seconds`` with the writer paused, then for
   ``--seconds`` with it running:

   * updates applied per second: ``window.pushsvc.stats`` deltas and renders,
     and the VM entries those deltas carried (counted from the WebSocket
     frames, outside the page);
   * render time per frame: every ``stats.lastRenderMs`` (the dashboard's
     rAF render pass: DOM updates only), and frame-to-frame times of a
     ``requestAnimationFrame`` loop (p50/p95/p99/max);
   * long tasks (> 50 ms, ``PerformanceObserver``);
   * main-thread busy fraction from the DevTools ``Performance.getMetrics``
     counters (TaskDuration / wall time; script, style and layout shares).

   A last window (``--reduced-seconds``) repeats the measurement with
   ``prefers-reduced-motion: reduce`` emulated, under which the GUI drops the
   progress bars' 0.9 s CSS transition: the difference is what that animation
   costs.

5. Stops the writer, waits two poll intervals and checks that every row shows
   its job's last progress (the GUI converged).

Prints one table. Not collected by pytest (tests/bench is outside testpaths).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import jwt
import pymysql

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))

from playwright.async_api import async_playwright  # noqa: E402

from pushsvc.config import DatabaseConfig, parse_database_url  # noqa: E402
from pushsvc.store import open_store  # noqa: E402
from tests.processes import stop_process  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SECRET = "bench-gui-secret-" + "g" * 48
GiB = 1024**3
MiB = 1024**2

# Installed in the page: frame times, render samples and long tasks, until __bench.stop().
PAGE_PROBE = """
() => {
  const stats = window.pushsvc.stats;
  const probe = { frames: [], renders: [], longtasks: [], running: true };
  let last = performance.now();
  let renders = stats.renders;
  const tick = (now) => {
    if (!probe.running) return;
    probe.frames.push(now - last);
    last = now;
    if (stats.renders !== renders) {
      renders = stats.renders;
      probe.renders.push(stats.lastRenderMs);
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame((now) => { last = now; requestAnimationFrame(tick); });
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) probe.longtasks.push(entry.duration);
  });
  try { observer.observe({ type: 'longtask' }); } catch (e) { probe.noLongtask = String(e); }
  probe.stop = () => { probe.running = false; observer.disconnect(); };
  window.__bench = probe;
}
"""


# ---- database ------------------------------------------------------------------------


def server_params(url: str) -> dict:
    return parse_database_url(url, require_database=False).server_args()


def admin(server: str, sql: str) -> None:
    conn = pymysql.connect(**server_params(server), autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def database_url(server: str, name: str) -> str:
    parsed = urllib.parse.urlsplit(server)
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, "/" + name, "", ""))


async def create_schema(url: str) -> None:
    store = open_store(DatabaseConfig(url=url, timezone="UTC"))
    try:
        await store.create_schema()
    finally:
        await store.close()


class Fleet:
    """The rows and the appliance-like writer: one UPDATE per job per second, in one transaction."""

    def __init__(self, url: str, count: int, seed: int = 500) -> None:
        self.params = {**server_params(url), "database": urllib.parse.urlsplit(url).path.lstrip("/")}
        self.rng = random.Random(seed)
        self.count = count
        self.names = [f"bench-vm-{index:04d}" for index in range(count)]
        self.jobs = []
        for index, name in enumerate(self.names):
            total = self.rng.randint(20, 400) * GiB
            self.jobs.append(
                {
                    "id": f"job-bench-{index:04d}",
                    "context": f"ctx-{name}",
                    "name": name,
                    "total": total,
                    "done": int(total * self.rng.uniform(0.0, 0.6)),
                    "speed": self.rng.uniform(10, 160) * MiB,
                }
            )
        self.running = threading.Event()
        self.stopped = threading.Event()
        self.batches: list[float] = []  # seconds per transaction
        self.updates = 0
        self._thread: threading.Thread | None = None

    def connect(self) -> pymysql.Connection:
        return pymysql.connect(**self.params, autocommit=False, charset="utf8mb4")

    def load(self) -> None:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None).replace(microsecond=0)
        contexts, jobs = [], []
        for index, job in enumerate(self.jobs):
            name = job["name"]
            vm_id = f"4205{index:04x}-0000-4000-8000-{index:012x}"
            contexts.append(
                (
                    job["context"],
                    name,
                    vm_id,
                    f"/DatabanxDC/vm/{name}",
                    "quad-vcenter-01.quadris.local",
                    "DatabanxDC",
                    "replicating",
                    1,
                    0,
                    0,
                    self.rng.choice([2, 4, 8]),
                    self.rng.choice([4096, 8192, 16384]),
                    self.rng.choice(["linux", "windows"]),
                    "poweredOn",
                    "11.3.5",
                    now,
                    now,
                    now,
                    now,
                )
            )
            jobs.append(
                (
                    job["id"],
                    job["context"],
                    vm_id,
                    name,
                    f"/DatabanxDC/vm/{name}",
                    "quad-vcenter-01.quadris.local",
                    "DatabanxDC",
                    "initial",
                    "replicating",
                    self.percent(job),
                    "Transferring Data",
                    job["done"],
                    job["total"],
                    int(job["speed"]),
                    "",
                    "",
                    "",
                    f"migration-vol-bench-{index:04d}",
                    "full",
                    "Transfer",
                    round(job["speed"] / MiB, 2),
                    self.eta(job),
                    now,
                    now,
                    now,
                    now,
                )
            )
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO vm_replication_contexts (context_id, vm_name, vmware_vm_id, vm_path, vcenter_host,"
                    " datacenter, current_status, total_jobs_run, successful_jobs, failed_jobs, cpu_count, memory_mb,"
                    " os_type, power_state, vm_tools_version, created_at, first_job_at, last_job_at, last_status_change)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    contexts,
                )
                cursor.executemany(
                    "INSERT INTO replication_jobs (id, vm_context_id, source_vm_id, source_vm_name, source_vm_path,"
                    " v_center_host, datacenter, replication_type, status, progress_percent, current_operation,"
                    " bytes_transferred, total_bytes, transfer_speed_bps, error_message, change_id, previous_change_id,"
                    " nbd_export_name, vma_sync_type, vma_current_phase, vma_throughput_mbps, vma_eta_seconds,"
                    " vma_last_poll_at, created_at, updated_at, started_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                    " %s, %s, %s, %s)",
                    jobs,
                )
                cursor.execute(
                    "UPDATE vm_replication_contexts c JOIN replication_jobs j ON j.vm_context_id = c.context_id"
                    " SET c.current_job_id = j.id, c.updated_at = c.created_at"
                )
            conn.commit()
        finally:
            conn.close()

    @staticmethod
    def percent(job: dict) -> float:
        return job["done"] / job["total"] * 100

    @staticmethod
    def eta(job: dict) -> int:
        return max(0, int((job["total"] - job["done"]) / job["speed"]))

    def step(self) -> None:
        for job in self.jobs:
            job["speed"] = min(170 * MiB, max(8 * MiB, job["speed"] * self.rng.uniform(0.95, 1.05)))
            job["done"] += int(job["speed"])
            if job["done"] >= job["total"]:
                job["done"] = 0  # keep every job in flight for the whole run

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="appliance-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = self.connect()
        try:
            deadline = time.monotonic()
            while not self.stopped.is_set():
                if not self.running.wait(0.1):
                    deadline = time.monotonic()
                    continue
                self.step()
                started = time.monotonic()
                now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                with conn.cursor() as cursor:
                    for job in self.jobs:
                        cursor.execute(
                            "UPDATE replication_jobs SET progress_percent = %s, bytes_transferred = %s,"
                            " transfer_speed_bps = %s, vma_throughput_mbps = %s, vma_eta_seconds = %s,"
                            " vma_last_poll_at = %s, updated_at = %s WHERE id = %s",
                            (
                                self.percent(job),
                                job["done"],
                                int(job["speed"]),
                                round(job["speed"] / MiB, 2),
                                self.eta(job),
                                now.replace(microsecond=0),
                                now,
                                job["id"],
                            ),
                        )
                conn.commit()
                self.batches.append(time.monotonic() - started)
                self.updates += len(self.jobs)
                deadline += 1.0
                self.stopped.wait(max(0.0, deadline - time.monotonic()))
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopped.set()
        if self._thread is not None:
            self._thread.join(10)


# ---- the service ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(url: str, port: int, interval: float) -> subprocess.Popen:
    env = {
        **os.environ,
        "PUSHSVC_DATABASE_URL": url,
        "PUSHSVC_DATABASE_TIMEZONE": "UTC",
        "PUSHSVC_AUTH_SECRET": SECRET,
        "PUSHSVC_POLLER_INTERVAL": str(interval),
        "PUSHSVC_SERVER_ACCESS_LOG": "false",
        "PUSHSVC_SERVER_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, str(REPO / "run.py"), "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pushsvc exited: {process.stderr.read().decode(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return process
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError("pushsvc did not become ready within 20 s")


def mint_token() -> str:
    now = dt.datetime.now(dt.UTC)
    return jwt.encode({"sub": "bench-gui", "iat": now, "exp": now + dt.timedelta(hours=1)}, SECRET, algorithm="HS256")


# ---- measuring ------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def metrics(cdp) -> dict[str, float]:
    return {item["name"]: item["value"] for item in (await cdp.send("Performance.getMetrics"))["metrics"]}


class FrameCounter:
    """VM entries carried by dashboard deltas, read from the socket's frames (outside the page)."""

    def __init__(self) -> None:
        self.deltas = 0
        self.entries = 0
        self.bytes = 0

    def on_frame(self, payload) -> None:
        if isinstance(payload, bytes):
            payload = payload.decode()
        self.bytes += len(payload)
        message = json.loads(payload)
        if message.get("type") == "delta" and message.get("topic") == "vm-contexts":
            self.deltas += 1
            self.entries += len(message.get("patch", {}).get("vm_contexts", {}))

    def snapshot(self) -> tuple[int, int, int]:
        return self.deltas, self.entries, self.bytes


async def measure(page, cdp, frames: FrameCounter, seconds: float) -> dict[str, float]:
    await page.evaluate(PAGE_PROBE)
    stats_before = await page.evaluate("({...window.pushsvc.stats})")
    frames_before = frames.snapshot()
    perf_before = await metrics(cdp)
    wall_started = time.monotonic()
    await asyncio.sleep(seconds)
    perf_after = await metrics(cdp)
    wall = time.monotonic() - wall_started
    frames_after = frames.snapshot()
    stats_after = await page.evaluate("({...window.pushsvc.stats})")
    probe = await page.evaluate(
        "(() => { window.__bench.stop(); const p = window.__bench;"
        " return {frames: p.frames, renders: p.renders, longtasks: p.longtasks,"
        " noLongtask: p.noLongtask || null}; })()"
    )
    span = perf_after["Timestamp"] - perf_before["Timestamp"]

    def share(name: str) -> float:
        return (perf_after[name] - perf_before[name]) / span

    renders = probe["renders"]
    frame_times = probe["frames"]
    return {
        "seconds": wall,
        "messages/s": (stats_after["messages"] - stats_before["messages"]) / wall,
        "deltas/s": (stats_after["deltas"] - stats_before["deltas"]) / wall,
        "vm updates/s": (frames_after[1] - frames_before[1]) / wall,
        "KiB/s": (frames_after[2] - frames_before[2]) / 1024 / wall,
        "renders/s": (stats_after["renders"] - stats_before["renders"]) / wall,
        "resyncs": stats_after["resyncs"] - stats_before["resyncs"],
        "render mean": statistics.fmean(renders) if renders else float("nan"),
        "render p50": percentile(renders, 50),
        "render p95": percentile(renders, 95),
        "render max": max(renders) if renders else float("nan"),
        "frames/s": len(frame_times) / wall,
        "frame p50": percentile(frame_times, 50),
        "frame p95": percentile(frame_times, 95),
        "frame p99": percentile(frame_times, 99),
        "frame max": max(frame_times) if frame_times else float("nan"),
        "longtasks": len(probe["longtasks"]),
        "longtask max": max(probe["longtasks"]) if probe["longtasks"] else 0.0,
        "busy": share("TaskDuration"),
        "script": share("ScriptDuration"),
        "style": share("RecalcStyleDuration"),
        "layout": share("LayoutDuration"),
        "other": share("TaskOtherDuration"),
        "devtools": share("DevToolsCommandDuration"),
        "thread cpu": share("ThreadTime"),
        "process cpu": share("ProcessTime"),
        "nodes": perf_after.get("Nodes", float("nan")),
        "heap MiB": perf_after.get("JSHeapUsedSize", float("nan")) / MiB,
    }


ROWS = [
    ("updates", None, None),
    ("dashboard deltas applied per second (stats.deltas)", "deltas/s", "{:.2f}"),
    ("VM entries in those deltas per second", "vm updates/s", "{:.0f}"),
    ("WebSocket payload received (KiB/s)", "KiB/s", "{:.1f}"),
    ("renders per second (stats.renders)", "renders/s", "{:.2f}"),
    ("resyncs", "resyncs", "{:.0f}"),
    ("render pass (stats.lastRenderMs, DOM updates only)", None, None),
    ("mean (ms)", "render mean", "{:.2f}"),
    ("p50 (ms)", "render p50", "{:.2f}"),
    ("p95 (ms)", "render p95", "{:.2f}"),
    ("max (ms)", "render max", "{:.2f}"),
    ("frames (requestAnimationFrame loop)", None, None),
    ("frames per second", "frames/s", "{:.1f}"),
    ("frame time p50 (ms)", "frame p50", "{:.1f}"),
    ("frame time p95 (ms)", "frame p95", "{:.1f}"),
    ("frame time p99 (ms)", "frame p99", "{:.1f}"),
    ("frame time max (ms)", "frame max", "{:.1f}"),
    ("long tasks > 50 ms (count)", "longtasks", "{:.0f}"),
    ("longest long task (ms)", "longtask max", "{:.0f}"),
    ("main thread (DevTools Performance.getMetrics)", None, None),
    ("busy fraction (TaskDuration / wall)", "busy", "{:.1%}"),
    ("  script", "script", "{:.1%}"),
    ("  style recalc", "style", "{:.1%}"),
    ("  layout", "layout", "{:.1%}"),
    ("  other (paint, GC, frames, timers)", "other", "{:.1%}"),
    ("  DevTools commands (the probe itself)", "devtools", "{:.1%}"),
    ("main-thread CPU time / wall", "thread cpu", "{:.1%}"),
    ("renderer process CPU time / wall (all threads)", "process cpu", "{:.1%}"),
    ("DOM nodes", "nodes", "{:.0f}"),
    ("JS heap used (MiB)", "heap MiB", "{:.1f}"),
]


def cell(fmt: str, value: float) -> str:
    return "n/a" if value != value else fmt.format(value)  # NaN: nothing was rendered


def print_table(columns: list[tuple[str, dict]]) -> None:
    width = max(len(label) for label, _, _ in ROWS) + 2
    header = "".join(f"{title:>26}" for title, _ in columns)
    print(f"{'':<{width}}{header}")
    for label, key, fmt in ROWS:
        if key is None:
            print(f"{label}")
            continue
        cells = "".join(f"{cell(fmt, result[key]):>26}" for _, result in columns)
        print(f"  {label:<{width - 2}}{cells}")


async def run(args: argparse.Namespace) -> int:
    chromium = args.chromium
    if not os.access(chromium, os.X_OK):
        print(f"Chromium not found at {chromium} (apt-get install chromium)", file=sys.stderr)
        return 2
    name = f"pushsvc_bench_gui_{secrets.token_hex(5)}"
    admin(args.mysql, f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    url = database_url(args.mysql, name)
    parse_database_url(url)
    fleet = Fleet(url, args.vms)
    process = None
    try:
        await create_schema(url)
        fleet.load()
        port = free_port()
        process = start_service(url, port, args.interval)
        fleet.start()
        token = mint_token()
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            try:
                context = await browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
                await context.add_init_script(f"sessionStorage.setItem('pushsvc.token', {json.dumps(token)})")
                page = await context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                frames = FrameCounter()
                if args.count_frames:
                    page.on("websocket", lambda ws: ws.on("framereceived", frames.on_frame))
                cdp = await context.new_cdp_session(page)
                await cdp.send("Performance.enable", {"timeDomain": "timeTicks"})

                await page.goto(f"http://127.0.0.1:{port}/")
                await page.wait_for_function(
                    # A function, not an expression: the page's CSP refuses to evaluate strings.
                    f"() => document.querySelectorAll('#vm-list tr[data-vm]').length === {args.vms}"
                    " && document.querySelector('#connection-status').dataset.state === 'live'",
                    timeout=60_000,
                )
                # Let the first snapshot's render and layout settle.
                await asyncio.sleep(2)

                idle = await measure(page, cdp, frames, args.idle_seconds)
                fleet.running.set()
                await asyncio.sleep(2)  # the first writes reach the page
                busy = await measure(page, cdp, frames, args.seconds)
                reduced = None
                if args.reduced_seconds > 0:
                    await page.emulate_media(reduced_motion="reduce")
                    await asyncio.sleep(1.5)
                    reduced = await measure(page, cdp, frames, args.reduced_seconds)
                fleet.running.clear()
                await asyncio.sleep(max(1.5, 2.5 * args.interval))

                # Converged: every row shows its job's last progress.
                shown = await page.evaluate(
                    "Object.fromEntries([...document.querySelectorAll('#vm-list tr[data-vm]')].map("
                    "row => [row.dataset.vm, row.querySelector('.job-percent').textContent]))"
                )
                expected = {job["name"]: f"{min(100.0, max(0.0, fleet.percent(job))):.1f}%" for job in fleet.jobs}
                converged = sum(shown.get(vm) == text for vm, text in expected.items())
                await context.close()
            finally:
                await browser.close()
    finally:
        fleet.stop()
        if process is not None:
            stop_process(process, 10)
        admin(args.mysql, f"DROP DATABASE IF EXISTS {name}")

    batches = fleet.batches
    print()
    print(
        f"GUI benchmark: {args.vms} VMs, every job updated once per second (one transaction of {args.vms}"
        f" UPDATEs), poller.interval {args.interval:g} s, Chromium {chromium_version(chromium)} headless, 1280x800"
    )
    print(
        f"writer: {len(batches)} transactions, {fleet.updates} job updates,"
        f" transaction time p50 {percentile(batches, 50) * 1000:.0f} ms / max {max(batches) * 1000:.0f} ms"
    )
    print(
        f"converged after the writer stopped: {converged}/{args.vms} rows show their job's last progress;"
        f" uncaught page errors: {len(errors)}"
    )
    print()
    columns = [(f"idle ({idle['seconds']:.0f} s)", idle), (f"{args.vms} VMs moving ({busy['seconds']:.0f} s)", busy)]
    if reduced is not None:
        columns.append((f"reduced motion ({reduced['seconds']:.0f} s)", reduced))
    print_table(columns)
    return 0 if converged == args.vms and not errors else 1


def chromium_version(chromium: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.split()[1] if len(out.split()) > 1 else out.strip()
    return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window with the writer running")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="baseline window with the writer paused")
    parser.add_argument("--interval", type=float, default=1.0, help="poller.interval (seconds)")
    parser.add_argument("--mysql", default=os.environ.get("PUSHSVC_BENCH_MYSQL", "mysql://root@127.0.0.1:3306"))
    parser.add_argument(
        "--reduced-seconds",
        type=float,
        default=10.0,
        help="a further window with prefers-reduced-motion: reduce, where the GUI skips the bars'"
        " CSS transition (0: skip it)",
    )
    parser.add_argument(
        "--no-count-frames",
        dest="count_frames",
        action="store_false",
        help="do not read the WebSocket frames through DevTools (VM entries/s then shows 0)",
    )
    parser.add_argument("--chromium", default=os.environ.get("PUSHSVC_CHROMIUM", "/usr/bin/chromium"))
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
