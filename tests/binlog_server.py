"""A private MariaDB server with the binary log on, for the binlog source's tests and benchmark.

The shared server on 3306 is never used for binlog work: its binlog setting is
not ours to change, and replication connections and server restarts would
disturb the other suites. Each :class:`PrivateMariaDB` owns a data directory,
a socket and a free TCP port on 127.0.0.1, and ``root`` with an empty
password (``--auth-root-authentication-method=normal``), so the tests can
create users with exactly the grants they want to try.

Start-up is kept short: the system tables are installed once into a template
directory (``mariadb-install-db``, about 1.5 s) and copied for each server;
the server itself answers in well under a second with a small buffer pool and
redo log and no name resolution.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pymysql

from pushsvc.config import DatabaseConfig
from pushsvc.demo.seed import load_seed
from pushsvc.store import Store, open_store

from .processes import stop_process

SBIN_PATH = "/usr/sbin:/usr/local/sbin:/usr/bin:/usr/local/bin"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
# Options both the install step and the server take: a small, quick server.
SMALL = (
    "--skip-name-resolve",
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=8M",
)


def find_binary(name: str) -> str:
    """The path of a MariaDB server binary; fails with what to install when it is missing."""
    path = shutil.which(name) or shutil.which(name, path=SBIN_PATH)
    if path is None:
        raise RuntimeError(f"{name} not found: install Debian's mariadb-server package (bash .ci/run does)")
    return path


def as_root_args() -> tuple[str, ...]:
    """mariadbd refuses to run as root unless told to; CI and these machines run as root."""
    return ("--user=root",) if os.geteuid() == 0 else ()


def install_template(directory: Path) -> Path:
    """System tables in ``directory/datadir``, to be copied for each server."""
    datadir = directory / "datadir"
    tmpdir = directory / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            find_binary("mariadb-install-db"),
            "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *as_root_args(),
            *SMALL,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        # The bootstrap server, too, must never clean the shared /tmp (see PrivateMariaDB's --tmpdir).
        env={**os.environ, "TMPDIR": str(tmpdir)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"mariadb-install-db failed ({done.returncode}): {done.stderr[-2000:]}")
    return datadir


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateMariaDB:
    """One mariadbd of the test run's own: ``start()``, ``stop()``, ``restart()``, ``url``.

    ``log_bin=False`` gives a server without the binary log (the requirement
    check's negative case). The port stays the same across restarts, so a
    client that reconnects finds the same server again.
    """

    def __init__(self, directory: Path, template: Path, *, log_bin: bool = True, server_id: int = 1) -> None:
        self.directory = directory
        self.datadir = directory / "datadir"
        self.socket = directory / "mariadbd.sock"
        self.error_log = directory / "error.log"
        self.log_bin = log_bin
        self.server_id = server_id
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        shutil.copytree(template, self.datadir)

    @property
    def url(self) -> str:
        """``mysql://root@127.0.0.1:<port>`` (no database)."""
        return f"mysql://root@127.0.0.1:{self.port}"

    def database_url(self, database: str, user: str = "root", password: str = "") -> str:
        auth = f"{user}:{password}" if password else user
        return f"mysql://{auth}@127.0.0.1:{self.port}/{database}"

    def command(self) -> list[str]:
        binlog = [f"--log-bin={self.datadir / 'binlog'}", "--binlog-format=ROW"] if self.log_bin else []
        tmpdir = self.directory / "tmp"
        tmpdir.mkdir(exist_ok=True)
        return [
            find_binary("mariadbd"),
            "--no-defaults",
            *as_root_args(),
            f"--datadir={self.datadir}",
            # Never the default /tmp: at start-up mariadbd deletes every "#sql*" file in its tmpdir,
            # which are the shared server's on-disk temporary tables while it runs a query (it then
            # fails the query, or crashes in free_tmp_table).
            f"--tmpdir={tmpdir}",
            f"--socket={self.socket}",
            f"--pid-file={self.directory / 'mariadbd.pid'}",
            f"--log-error={self.error_log}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--server-id={self.server_id}",
            *binlog,
            *SMALL,
            # The tests commit thousands of small transactions; an fsync each is not what they measure.
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=100",
        ]

    def start(self) -> None:
        """Start the server and return once it answers a query."""
        assert self.process is None, "already running"
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                raise RuntimeError(f"mariadbd exited with {code} while starting: {self._log_tail()}")
            try:
                self.connect(connect_timeout=1).close()
                return
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"mariadbd did not answer within {START_TIMEOUT:.0f}s: {self._log_tail()}"
                    ) from None
                time.sleep(0.02)  # nothing to await: the server only tells by answering

    def stop(self) -> None:
        """Shut the server down cleanly (SIGTERM), killing it if it takes too long."""
        process, self.process = self.process, None
        if process is None:
            return
        stop_process(process, STOP_TIMEOUT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def connect(self, **options) -> pymysql.Connection:
        options.setdefault("autocommit", True)
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="", **options)

    def execute(self, *statements: str, args=None) -> None:
        """Run statements as root (set-up and grants)."""
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement, args)
        finally:
            conn.close()

    def _log_tail(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no error log)"


@contextlib.asynccontextmanager
async def other_seeded_database(server: PrivateMariaDB) -> AsyncIterator[Store]:
    """Another database on ``server`` with the appliance's schema and the seed rows (writes the binlog
    source must ignore), dropped afterwards."""
    name = f"pushsvc_test_{secrets.token_hex(6)}"
    server.execute(f"CREATE DATABASE {name}")
    other = open_store(DatabaseConfig(url=server.database_url(name)))
    try:
        await other.create_schema()
        await load_seed(other)
        yield other
    finally:
        await other.close()
        server.execute(f"DROP DATABASE IF EXISTS {name}")


@contextlib.asynccontextmanager
async def binlog_off_database(template: Path, directory: Path, server_id: int) -> AsyncIterator[tuple[str, Store]]:
    """(URL, store) of a seeded database on a private server of its own with the binary log off
    (MariaDB's defaults, as on an appliance that never had it on); the server stops afterwards."""
    server = PrivateMariaDB(directory, template, log_bin=False, server_id=server_id)
    await asyncio.to_thread(server.start)
    try:
        server.execute("CREATE DATABASE pushsvc_test_nobinlog")
        url = server.database_url("pushsvc_test_nobinlog")
        store = open_store(DatabaseConfig(url=url))
        try:
            await store.create_schema()
            await load_seed(store)
            yield url, store
        finally:
            await store.close()
    finally:
        await asyncio.to_thread(server.stop)
