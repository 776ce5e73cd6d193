"""Shared machinery for the benchmarks: a private MariaDB database and users, the
appliance-like rows and writers, a pushsvc server process, /proc readings, tables.

Every benchmark gets its own database ``pushsvc_bench_<hex>`` and two MariaDB
users of its own: ``pb_svc_<hex>`` (SELECT only, what pushsvc connects as) and
``pb_wr_<hex>`` (the appliance-like writer). With ``userstat`` switched on,
``INFORMATION_SCHEMA.USER_STATISTICS`` then counts the service's statements and
the writer's separately from everything else the server runs (other engineers'
test suites share this MariaDB), which is what the tables report. The global
``Questions``/``Com_select`` counters are read too, as a cross-check.
Everything is dropped at the end, and ``userstat`` is set back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import multiprocessing
import os
import platform
import re
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jwt
import pymysql

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))  # the bench scripts run from a checkout, installed or not

from pushsvc.config import parse_database_url  # noqa: E402
from tests.processes import stop_process  # noqa: E402

SECRET = "bench-secret-" + "k" * 40
MYSQL_SERVER = os.environ.get("PUSHSVC_BENCH_MYSQL", "mysql://root@127.0.0.1:3306")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
MP = multiprocessing.get_context("fork")
TIMEZONE = "UTC"


# -- process limits and machine --------------------------------------------------


def clean_up_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt, so the context managers stop the
    server and load processes and drop the database and users (a process started
    in the background by a shell would otherwise ignore SIGINT)."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def as_load_process() -> None:
    """In a forked load or writer process: the parent alone handles Ctrl-C and stops us."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def raise_nofile() -> int:
    """Raise this process's open-file limit to the hard limit (inherited by children)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def machine_description() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    with admin() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        version = cursor.fetchone()[0]
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "mariadb": version,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


# -- MariaDB ---------------------------------------------------------------------


def _server(url: str | None = None) -> dict[str, Any]:
    return parse_database_url(url or MYSQL_SERVER, require_database=False).server_args()


def admin(database: str | None = None, server: dict[str, Any] | None = None) -> pymysql.Connection:
    return pymysql.connect(**(server or _server()), database=database, autocommit=True)


def _url(user: str, password: str, database: str, server: dict[str, Any] | None = None) -> str:
    server = server or _server()
    auth = urllib.parse.quote(user) + (":" + urllib.parse.quote(password) if password else "")
    return f"mysql://{auth}@{server['host']}:{server['port']}/{database}"


STAT_COLUMNS = (
    "SELECT_COMMANDS",
    "UPDATE_COMMANDS",
    "OTHER_COMMANDS",
    "CPU_TIME",
    "BUSY_TIME",
    "ROWS_READ",
    "BYTES_SENT",
)


class BenchDatabase:
    """``pushsvc_bench_<hex>`` with the appliance schema, a read-only service user and a writer user.

    ``server_url``: another MariaDB than ``PUSHSVC_BENCH_MYSQL`` (a private one with the binlog on);
    ``replication``: the service user also gets the binlog source's grants.
    """

    def __init__(self, server_url: str | None = None, replication: bool = False) -> None:
        suffix = secrets.token_hex(5)
        self.name = f"pushsvc_bench_{suffix}"
        self.svc_user, self.writer_user = f"pb_svc_{suffix}", f"pb_wr_{suffix}"
        self.password = secrets.token_hex(12)
        self.server = _server(server_url)
        self.host = self.server["host"]
        self.replication = replication
        self._userstat_before: str | None = None
        self._suffix = suffix
        self.logins: dict[str, str] = {}  # key -> user: more read-only service logins (add_login)

    def admin(self, database: str | None = None) -> pymysql.Connection:
        return admin(database, self.server)

    @property
    def svc_url(self) -> str:
        return _url(self.svc_user, self.password, self.name, self.server)

    @property
    def writer_url(self) -> str:
        return _url(self.writer_user, self.password, self.name, self.server)

    def add_login(self, key: str) -> str:
        """Another SELECT-only service login, counted as ``key`` in read_counters; returns its URL.

        Two services under test at once each get their own, so that each one's statements are its own.
        """
        user = f"pb_{key}_{self._suffix}"
        with admin() as conn, conn.cursor() as cursor:
            cursor.execute(f"CREATE USER '{user}'@'{self.host}' IDENTIFIED BY %s", (self.password,))
            cursor.execute(f"GRANT SELECT ON {self.name}.* TO '{user}'@'{self.host}'")
        self.logins[key] = user
        return _url(user, self.password, self.name)

    def writer_params(self) -> dict[str, Any]:
        server = self.server
        return {
            "host": server["host"],
            "port": server["port"],
            "user": self.writer_user,
            "password": self.password,
            "database": self.name,
        }

    def __enter__(self) -> BenchDatabase:
        server = self.server
        with self.admin() as conn, conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {self.name} CHARACTER SET utf8mb4")
            cursor.execute("SHOW GLOBAL VARIABLES LIKE 'userstat'")
            self._userstat_before = cursor.fetchone()[1]
            cursor.execute("SET GLOBAL userstat = 1")
            for user, grants in ((self.svc_user, "SELECT"), (self.writer_user, "SELECT, INSERT, UPDATE, DELETE")):
                cursor.execute(f"CREATE USER '{user}'@'{server['host']}' IDENTIFIED BY %s", (self.password,))
                cursor.execute(f"GRANT {grants} ON {self.name}.* TO '{user}'@'{server['host']}'")
            if self.replication:
                cursor.execute(
                    f"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{self.svc_user}'@'{server['host']}'"
                )
        # The project's own command creates the schema (as the admin user: DDL).
        root = _url(server["user"], server["password"], self.name, server)
        subprocess.run(
            [sys.executable, "run.py", "schema", "--database", root], cwd=REPO, check=True, stdout=subprocess.DEVNULL
        )
        return self

    def __exit__(self, *exc: object) -> None:
        server = self.server
        with self.admin() as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {self.name}")
            for user in (self.svc_user, self.writer_user, *self.logins.values()):
                cursor.execute(f"DROP USER IF EXISTS '{user}'@'{server['host']}'")
            if self._userstat_before is not None and self._userstat_before.upper() in ("OFF", "0"):
                cursor.execute("SET GLOBAL userstat = 0")

    def read_counters(self, cursor) -> dict[str, Any]:
        """Both users' USER_STATISTICS rows and the global counters: exactly two statements."""
        users = {"svc": self.svc_user, "wr": self.writer_user, **self.logins}
        marks = ", ".join(["%s"] * len(users))
        cursor.execute(
            f"SELECT USER, {', '.join(STAT_COLUMNS)} FROM INFORMATION_SCHEMA.USER_STATISTICS WHERE USER IN ({marks})",
            tuple(users.values()),
        )
        by_user = {row[0]: dict(zip(STAT_COLUMNS, (float(v) for v in row[1:]))) for row in cursor.fetchall()}
        empty = dict.fromkeys(STAT_COLUMNS, 0.0)
        cursor.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_select')")
        status = {name: int(value) for name, value in cursor.fetchall()}
        counters: dict[str, Any] = {key: by_user.get(user, empty) for key, user in users.items()}
        counters["global"] = status
        return counters

    def populate(self, vms: int, active: int, *, disks: int = 2, cbt: int = 2, history: int = 1) -> list[str]:
        """``vms`` contexts named bench-vm-NNN; the first ``active`` have a replicating current job.

        Returns the active jobs' ids. Rows are shaped like the seed's pgtest1.
        """
        from pushsvc.demo import seed as f

        now = dt.datetime.utcnow().replace(microsecond=0)
        contexts, jobs, disk_rows, cbt_rows, current = [], [], [], [], []
        for index in range(vms):
            vm = f"bench-vm-{index:03d}"
            context_id = f"ctx-{vm}-20250909-113839"
            contexts.append(
                {
                    **f.SEED_CONTEXT,
                    "context_id": context_id,
                    "vm_name": vm,
                    "vm_path": f"/DatabanxDC/vm/{vm}",
                    "vmware_vm_id": f"4205{index:04d}-f61f-a930-77c5-1e876786cb3c",
                    "current_status": "replicating" if index < active else "ready_for_failover",
                    "created_at": now,
                    "updated_at": now,
                    "last_status_change": now,
                }
            )
            for h in range(history):
                jobs.append(
                    {
                        **f.SEED_EARLIER_JOB,
                        "id": f"job-{vm}-h{h}",
                        "vm_context_id": context_id,
                        "source_vm_name": vm,
                        "created_at": now - dt.timedelta(hours=h + 1),
                        "updated_at": now - dt.timedelta(hours=h + 1),
                    }
                )
            job_id = f"job-{vm}-h0"
            if index < active:
                job_id = f"job-{vm}-cur"
                current.append((context_id, job_id))
                jobs.append(
                    {
                        **f.SEED_CURRENT_JOB,
                        "id": job_id,
                        "vm_context_id": context_id,
                        "source_vm_name": vm,
                        "bytes_transferred": 0,
                        "progress_percent": 0.0,
                        "vma_eta_seconds": 3000,
                        "created_at": now,
                        "updated_at": now,
                        "started_at": now,
                        "vma_last_poll_at": now,
                    }
                )
            for d in range(disks):
                disk = {key: value for key, value in f.SEED_DISK.items() if key != "id"}
                disk_rows.append(
                    {
                        **disk,
                        "vm_context_id": context_id,
                        "job_id": job_id,
                        "disk_id": f"disk-{2000 + d}",
                        "label": f"Hard disk {d + 1}",
                        "unit_number": d,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            for c in range(cbt):
                row = {key: value for key, value in f.SEED_CBT.items() if key != "id"}
                cbt_rows.append(
                    {
                        **row,
                        "vm_context_id": context_id,
                        "job_id": job_id,
                        "disk_id": f"disk-{2000 + c}",
                        "created_at": now,
                    }
                )
        with self.admin(self.name) as conn, conn.cursor() as cursor:
            _insert(cursor, "vm_replication_contexts", contexts)
            _insert(cursor, "replication_jobs", jobs)
            cursor.executemany(
                "UPDATE vm_replication_contexts SET current_job_id = %s WHERE context_id = %s",
                [(job_id, context_id) for context_id, job_id in current],
            )
            _insert(cursor, "vm_disks", disk_rows)
            _insert(cursor, "cbt_history", cbt_rows)
        return [job_id for _, job_id in current]


def _insert(cursor, table: str, rows: list[dict[str, Any]]) -> None:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    for keys, group in groups.items():
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(keys)}) VALUES ({', '.join(['%s'] * len(keys))})",
            [[row[key] for key in keys] for row in group],
        )


# -- the appliance's writers -----------------------------------------------------

PROGRESS_UPDATE = (
    "UPDATE replication_jobs SET status = %s, progress_percent = %s, current_operation = %s, bytes_transferred = %s,"
    " total_bytes = %s, transfer_speed_bps = %s, vma_sync_type = %s, vma_current_phase = %s,"
    " vma_throughput_mbps = %s, vma_eta_seconds = %s, vma_last_poll_at = %s, updated_at = %s WHERE id = %s"
)
TOTAL_BYTES = 38654705664


def progress_args(job_id: str, step: int, eta: int | None = None) -> tuple:
    speed = 12_000_000 + (step * 7919) % 4_000_000
    done = min(TOTAL_BYTES, step * speed * 2)
    now = dt.datetime.utcnow()
    return (
        "replicating",
        done * 100.0 / TOTAL_BYTES,
        "Transferring Data",
        done,
        TOTAL_BYTES,
        speed,
        "full",
        "Transfer",
        round(speed / 1048576, 2),
        eta if eta is not None else int((TOTAL_BYTES - done) / speed),
        now.replace(microsecond=0),
        now.replace(microsecond=now.microsecond // 1000 * 1000),
        job_id,
    )


def progress_writer(
    params: dict, job_ids: Sequence[str], period: float, stop, statements, fast: bool = False, burst: bool = False
) -> None:
    """Rewrite the ~12 progress columns of every job once per ``period``, spread evenly.

    One autocommit UPDATE per write (one statement, counted in ``statements``).
    ``fast``: write back to back (the fan-out benchmark's change source).
    ``burst``: all jobs back to back, then wait for the rest of the period.
    """
    as_load_process()
    conn = pymysql.connect(**params, autocommit=True)
    cursor = conn.cursor()
    gap = period / max(1, len(job_ids))
    step, deadline = 0, time.monotonic()
    if burst:
        fast, gap = True, 0.0
    try:
        while not stop.is_set():
            for job_id in job_ids:
                cursor.execute(PROGRESS_UPDATE, progress_args(job_id, step))
                with statements.get_lock():
                    statements.value += 1
                if not fast:
                    deadline += gap
                    delay = deadline - time.monotonic()
                    if delay > 0:
                        stop.wait(delay)
                if stop.is_set():
                    break
            step += 1
            if burst:
                deadline += period
                delay = deadline - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
    finally:
        conn.close()


class Writer:
    """The appliance-like progress writer in a process of its own."""

    def __init__(
        self, db: BenchDatabase, job_ids: Sequence[str], period: float = 2.0, fast: bool = False, burst: bool = False
    ) -> None:
        self.stop_event = MP.Event()
        self.statements = MP.Value("q", 0)
        self.process = MP.Process(
            target=progress_writer,
            args=(db.writer_params(), list(job_ids), period, self.stop_event, self.statements, fast, burst),
            daemon=True,
        )

    def __enter__(self) -> Writer:
        self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()

    @property
    def count(self) -> int:
        return self.statements.value


# -- the service -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_token(ttl: float = 6 * 3600) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "bench", "iat": now, "exp": now + int(ttl)}, SECRET, algorithm="HS256")


class Server:
    """A pushsvc (or any) server in a subprocess; CPU and RSS from /proc."""

    def __init__(
        self, argv: Sequence[str] | None = None, env: dict[str, str] | None = None, database_url: str = ""
    ) -> None:
        self.port = free_port()
        self.pushsvc = argv is None
        self.argv = list(argv) if argv else [sys.executable, os.environ.get("BENCH_SERVER_SCRIPT", "run.py")]
        base = {
            "PUSHSVC_DATABASE_URL": database_url,
            "PUSHSVC_DATABASE_TIMEZONE": TIMEZONE,
            "PUSHSVC_SERVER_HOST": "127.0.0.1",
            "PUSHSVC_SERVER_PORT": str(self.port),
            "PUSHSVC_SERVER_ACCESS_LOG": "false",
            "PUSHSVC_SERVER_LOG_LEVEL": "WARNING",
            "PUSHSVC_AUTH_SECRET": SECRET,
            "PUSHSVC_POLLER_INTERVAL": "1.0",
            # Load generators send a subscribe burst; the per-socket limit is not under test.
            "PUSHSVC_WEBSOCKET_RATE_LIMIT": "1000",
            "PUSHSVC_WEBSOCKET_RATE_BURST": "1000",
        }
        base.update(env or {})
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("PUSHSVC_")}
        self.env.update(base)
        self.env["BENCH_PORT"] = str(self.port)
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            stop_process(self.process, 15)

    def cpu_seconds(self) -> float:
        """utime + stime of the server process (/proc/<pid>/stat fields 14 and 15)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def metrics(self) -> dict[str, float]:
        """pushsvc's /metrics, unlabelled samples only."""
        with urllib.request.urlopen(self.base_url + "/metrics", timeout=5) as response:
            text = response.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#") and "{" not in line:
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def get(self, path: str, token: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base_url + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()


class Window:
    """Counters over a measurement window: service CPU, DB statements by user, global counters."""

    # The monitor's own statements per reading (USER_STATISTICS select + SHOW GLOBAL STATUS).
    MONITOR_STATEMENTS = 2

    def __init__(self, server: Server, db: BenchDatabase | None = None, writer: Writer | None = None) -> None:
        self.server, self.db, self.writer = server, db, writer
        self._conn = db.admin() if db is not None else None

    def _read(self) -> dict[str, Any]:
        state: dict[str, Any] = {"t": time.monotonic(), "cpu": self.server.cpu_seconds()}
        if self.db is not None:
            with self._conn.cursor() as cursor:
                state.update(self.db.read_counters(cursor))
        if self.writer is not None:
            state["writer"] = self.writer.count
        return state

    def __enter__(self) -> Window:
        self._profiler = _start_profiler(self.server.pid)
        self.start = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        self.end = self._read()
        if self._conn is not None:
            self._conn.close()
        if self._profiler is not None:
            self._profiler.send_signal(signal.SIGINT)
            self._profiler.wait(30)

    @property
    def seconds(self) -> float:
        return self.end["t"] - self.start["t"]

    def rate(self, value: float) -> float:
        return value / self.seconds

    @property
    def cpu_percent(self) -> float:
        return 100 * (self.end["cpu"] - self.start["cpu"]) / self.seconds

    def user_delta(self, who: str, column: str) -> float:
        return self.end[who][column] - self.start[who][column]

    def statements(self, who: str) -> float:
        return sum(self.user_delta(who, c) for c in ("SELECT_COMMANDS", "UPDATE_COMMANDS", "OTHER_COMMANDS"))

    def global_delta(self, name: str) -> int:
        return self.end["global"][name] - self.start["global"][name]


def _start_profiler(pid: int) -> subprocess.Popen | None:
    """With BENCH_PYSPY=<dir>, sample the server with py-spy during each window (collapsed stacks)."""
    folder = os.environ.get("BENCH_PYSPY")
    if not folder:
        return None
    os.makedirs(folder, exist_ok=True)
    name = os.path.join(folder, f"{os.path.basename(sys.argv[0])[:-3]}-{time.strftime('%H%M%S')}-{pid}.txt")
    process = subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--output", name, "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return process


# -- reporting -------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (need not be sorted)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def print_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], notes: Iterable[str] = ()) -> None:
    rows = [[_cell(value) for value in row] for row in rows]
    print(f"### {title}\n")
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---:" if i else "---" for i in range(len(headers))) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for note in notes:
        print(f"\n{note}")
    print(flush=True)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_prometheus(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$", line)
        if match:
            values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return values
