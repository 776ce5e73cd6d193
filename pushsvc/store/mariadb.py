"""MariaDB (and MySQL) through an aiomysql pool.

Timeouts use ``asyncio.timeout``, never ``wait_for`` (why: ``pushsvc/tasks.py``).

Connections are opened lazily (``minsize=0``) so the service starts while the
database is down; every connect and statement is bounded by the configured
timeouts. Reads run in REPEATABLE READ transactions, so all statements of one
``snapshot()`` see the same state. Any driver or network failure surfaces as
:class:`StoreUnavailable`; the failed connection is discarded and the idle
ones are dropped too, since after an outage they are all dead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import aiomysql
import pymysql

from ..config import DatabaseConfig, DatabaseURL
from ..logsafe import printable
from .base import Args, Reader, Store, StoreUnavailable, Writer

# Errors that mean "the server is gone or did not answer", not "our SQL is wrong".
_UNAVAILABLE = (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError, asyncio.TimeoutError, EOFError)


class _Connection(Writer):
    def __init__(self, store: MariaDBStore, conn: aiomysql.Connection) -> None:
        self._store = store
        self._conn = conn

    async def _run(self, sql: str, args: Args) -> aiomysql.Cursor:
        self._store.statements += 1
        cursor = await self._conn.cursor()
        async with asyncio.timeout(self._store.query_timeout):
            await cursor.execute(sql, tuple(args) or None)
        return cursor

    async def fetch_all(self, sql: str, args: Args = ()) -> list[tuple[Any, ...]]:
        cursor = await self._run(sql, args)
        rows = await cursor.fetchall()
        await cursor.close()
        return list(rows)

    async def execute(self, sql: str, args: Args = ()) -> int:
        cursor = await self._run(sql, args)
        count: int = cursor.rowcount
        await cursor.close()
        return count

    async def insert(self, sql: str, args: Args = ()) -> int:
        cursor = await self._run(sql, args)
        new_id: int = cursor.lastrowid
        await cursor.close()
        return new_id


class MariaDBStore(Store):
    engine = "mysql"

    def __init__(self, url: DatabaseURL, config: DatabaseConfig) -> None:
        super().__init__()
        self.url = url
        self.query_timeout = config.query_timeout
        self._connect_timeout = config.connect_timeout
        self._pool_size = config.pool_size
        self._pool: aiomysql.Pool | None = None

    async def _get_pool(self) -> aiomysql.Pool:
        if self._pool is None:
            self._pool = await aiomysql.create_pool(
                **self.url.server_args(),
                db=self.url.database,
                minsize=0,
                maxsize=self._pool_size,
                connect_timeout=self._connect_timeout,
                charset="utf8mb4",
                autocommit=False,
                pool_recycle=600,
                init_command="SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            )
        return self._pool

    @contextlib.asynccontextmanager
    async def _connection(self, *, commit: bool) -> AsyncIterator[_Connection]:
        try:
            pool = await self._get_pool()
            async with asyncio.timeout(self._connect_timeout + self.query_timeout):
                conn = await pool.acquire()
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(describe_error(exc, self.url.password)) from exc
        try:
            yield _Connection(self, conn)
            self.statements += 1
            async with asyncio.timeout(self.query_timeout):
                await (conn.commit() if commit else conn.rollback())
        except BaseException as exc:
            # A connection interrupted mid-statement cannot be reused.
            conn.close()
            if isinstance(exc, _UNAVAILABLE):
                await self._drop_idle()
                raise StoreUnavailable(describe_error(exc, self.url.password)) from exc
            raise
        finally:
            pool.release(conn)

    async def _drop_idle(self) -> None:
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await self._pool.clear()

    def snapshot(self) -> contextlib.AbstractAsyncContextManager[Reader]:
        return self._connection(commit=False)

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Writer]:
        return self._connection(commit=True)

    async def ping(self) -> None:
        async with self.snapshot() as reader:
            await reader.fetch_all("SELECT 1")

    async def has_schema(self) -> bool:
        async with self.snapshot() as reader:
            rows = await reader.fetch_all(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s",
                ["vm_replication_contexts"],
            )
        return bool(rows)

    async def create_schema(self) -> None:
        ddl = resources.files(__package__).joinpath("schema_mariadb.sql").read_text(encoding="utf-8")
        async with self.transaction() as writer:
            for statement in split_statements(ddl):
                await writer.execute(statement)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()
            self._pool = None


def split_statements(script: str) -> list[str]:
    """Split a DDL script on ``;`` at line ends, dropping ``--`` comment lines."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";\n") if part.strip().rstrip(";")]


def describe_error(exc: BaseException, password: str = "") -> str:
    """A log-safe description: the server's message and code, never SQL text or the password.

    ``Unknown database 'x' (1049)``, ``Access denied for user 'u'@'h' (using
    password: YES) (1045)``, ``Can't connect to MySQL server on 'h' (...) (2003)``.
    Only connection and server-state errors reach here (``_UNAVAILABLE``); the
    error classes whose text quotes a statement or its values (syntax, data)
    are bugs and propagate as they are.
    """
    if isinstance(exc, pymysql.err.MySQLError) and exc.args:
        code = exc.args[0]
        message = str(exc.args[1]) if len(exc.args) > 1 else ""
        text = f"{message} ({code})" if message else f"{type(exc).__name__} {code}"
    elif isinstance(exc, asyncio.TimeoutError):
        text = "timed out"
    elif isinstance(exc, OSError):
        text = str(exc) or type(exc).__name__
    else:
        text = type(exc).__name__
    if password:
        text = text.replace(password, "***")
    return printable(text, 300)
