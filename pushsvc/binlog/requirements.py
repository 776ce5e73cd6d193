"""Start-up check: can this server and login feed the binlog source?

Needs, on the server: ``log_bin=ON`` and ``binlog_format=ROW``; for the
login: ``REPLICATION SLAVE`` (to read the binlog) and ``BINLOG MONITOR``
(MariaDB 10.5.2 and later; ``REPLICATION CLIENT`` on older MariaDB and on
MySQL, where it is the same privilege under its old name), plus ``SELECT``
on the four tables. The answer names everything missing at once, so the
caller can log one clear line and fall back to polling.

Grants are read from ``SHOW GRANTS``, which also lists the privileges of the
login's active role; ``SELECT`` is tried for real on each table, which also
covers database-wide, wildcard and table grants. Runs on its own short-lived
connection in a thread: the store's pool would report a refused statement
as "database unavailable".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass

import pymysql

from ..config import DatabaseURL
from .rows import WATCHED_TABLES

_GLOBAL_GRANT = re.compile(r"^GRANT (.+?) ON \*\.\* TO ", re.IGNORECASE)
# Each requirement, and the global privileges that satisfy it (old and new names).
_REPLICATION = ("REPLICATION SLAVE", "REPLICATION REPLICA", "ALL PRIVILEGES")
_MONITOR = ("BINLOG MONITOR", "REPLICATION CLIENT", "SUPER", "ALL PRIVILEGES")
ER_TABLEACCESS_DENIED = 1142
ER_NO_SUCH_TABLE = 1146


@dataclass(frozen=True)
class BinlogRequirements:
    """What is missing (empty: the binlog source can run) and the server's version.

    ``answered``: False when the server could not be asked at all (down,
    unreachable, login refused): then the answer says nothing about the
    binlog and is worth asking again later.
    """

    missing: tuple[str, ...]
    server_version: str = ""
    answered: bool = True

    @property
    def ok(self) -> bool:
        return not self.missing

    @property
    def message(self) -> str:
        if self.ok:
            return "binlog source: every requirement is met"
        return "binlog source needs " + "; ".join(self.missing)


async def check_requirements(url: DatabaseURL, connect_timeout: float = 2.0) -> BinlogRequirements:
    """Check the server and the login of ``url`` (blocking work runs in a thread)."""
    return await asyncio.to_thread(check_requirements_blocking, url, connect_timeout)


def check_requirements_blocking(url: DatabaseURL, connect_timeout: float = 2.0) -> BinlogRequirements:
    try:
        conn = pymysql.connect(
            **url.server_args(),
            database=url.database,
            connect_timeout=connect_timeout,
            read_timeout=connect_timeout * 5,
            autocommit=True,
        )
    except pymysql.err.MySQLError as exc:
        return BinlogRequirements((f"a working login ({_describe(exc)})",), answered=False)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT @@GLOBAL.log_bin, @@GLOBAL.binlog_format, VERSION()")
            log_bin, binlog_format, version = cursor.fetchone()
            missing: list[str] = []
            if str(log_bin) not in ("1", "ON"):
                missing.append("log_bin=ON (the server's binary log is off)")
            if str(binlog_format).upper() != "ROW":
                missing.append(f"binlog_format=ROW (it is {binlog_format})")
            cursor.execute("SHOW GRANTS")
            granted = global_privileges(grant for (grant,) in cursor.fetchall())
            if not granted & set(_REPLICATION):
                missing.append("the REPLICATION SLAVE grant")
            if not granted & set(_MONITOR):
                missing.append("the BINLOG MONITOR grant (REPLICATION CLIENT before MariaDB 10.5.2)")
            for table in WATCHED_TABLES:
                try:
                    cursor.execute(f"SELECT 1 FROM {table} LIMIT 0")  # table names are code constants
                except pymysql.err.MySQLError as exc:
                    code = exc.args[0] if exc.args else None
                    if code == ER_TABLEACCESS_DENIED:
                        missing.append(f"SELECT on {url.database}.{table}")
                    elif code == ER_NO_SUCH_TABLE:
                        missing.append(f"the table {url.database}.{table} (it does not exist)")
                    else:
                        raise
            return BinlogRequirements(tuple(missing), str(version))
    except pymysql.err.MySQLError as exc:
        return BinlogRequirements((f"a database that answers ({_describe(exc)})",), answered=False)
    finally:
        conn.close()


def global_privileges(grant_lines: Iterable[object]) -> set[str]:
    """Privileges granted ``ON *.*`` in ``SHOW GRANTS`` lines (the login's and its active role's)."""
    privileges: set[str] = set()
    for line in grant_lines:
        match = _GLOBAL_GRANT.match(str(line))
        if match:
            privileges.update(part.strip().upper() for part in match.group(1).split(","))
    return privileges


def _describe(exc: pymysql.err.MySQLError) -> str:
    """Error code and the server's message (which names the login, never its password)."""
    if len(exc.args) >= 2:
        return f"{exc.args[0]}: {exc.args[1]}"
    return type(exc).__name__
