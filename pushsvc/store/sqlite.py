"""The embedded SQLite store (the default for ``--demo`` and development).

One aiosqlite connection in WAL mode, with foreign keys on. SQLite allows one
transaction per connection, so transactions take turns through a lock; that
is ample for a demo-sized database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import aiosqlite

from ..config import DatabaseConfig
from ..logsafe import printable
from .base import Args, Reader, Store, StoreUnavailable, Writer


def _translate(sql: str) -> str:
    return sql.replace("%s", "?")


class _Connection(Writer):
    def __init__(self, store: SQLiteStore, conn: aiosqlite.Connection) -> None:
        self._store = store
        self._conn = conn

    async def fetch_all(self, sql: str, args: Args = ()) -> list[tuple[Any, ...]]:
        self._store.statements += 1
        async with self._conn.execute(_translate(sql), tuple(args)) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    async def execute(self, sql: str, args: Args = ()) -> int:
        self._store.statements += 1
        async with self._conn.execute(_translate(sql), tuple(args)) as cursor:
            return cursor.rowcount

    async def insert(self, sql: str, args: Args = ()) -> int:
        self._store.statements += 1
        async with self._conn.execute(_translate(sql), tuple(args)) as cursor:
            if cursor.lastrowid is None:
                raise RuntimeError("INSERT gave no row id")
            return cursor.lastrowid


class SQLiteStore(Store):
    engine = "sqlite"

    def __init__(self, path: str, config: DatabaseConfig) -> None:
        super().__init__()
        self.path = path
        self._timeout = config.query_timeout
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> aiosqlite.Connection:
        if self._conn is None:
            if self.path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)  # noqa: ASYNC240 - once
            conn = await aiosqlite.connect(self.path, isolation_level=None, timeout=self._timeout)
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA busy_timeout = 2000")
            self._conn = conn
        return self._conn

    @contextlib.asynccontextmanager
    async def _transaction(self, begin: str) -> AsyncIterator[_Connection]:
        async with self._lock:
            try:
                conn = await self._connect()
                await conn.execute(begin)
            except (sqlite3.OperationalError, OSError) as exc:
                raise self._unavailable(exc) from exc
            self.statements += 1
            try:
                yield _Connection(self, conn)
            except BaseException:
                self.statements += 1
                await conn.execute("ROLLBACK")
                raise
            self.statements += 1
            await conn.execute("COMMIT")

    def snapshot(self) -> contextlib.AbstractAsyncContextManager[Reader]:
        return self._transaction("BEGIN")

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Writer]:
        return self._transaction("BEGIN IMMEDIATE")

    async def ping(self) -> None:
        async with self.snapshot() as reader:
            await reader.fetch_all("SELECT 1")

    async def has_schema(self) -> bool:
        async with self.snapshot() as reader:
            rows = await reader.fetch_all(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = %s", ["vm_replication_contexts"]
            )
        return bool(rows)

    async def create_schema(self) -> None:
        ddl = resources.files(__package__).joinpath("schema_sqlite.sql").read_text(encoding="utf-8")
        async with self._lock:
            try:
                conn = await self._connect()
                await conn.executescript(ddl)
            except (sqlite3.OperationalError, OSError) as exc:
                raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        # SQLite's messages name the problem, not a statement: "unable to open database file".
        return StoreUnavailable(f"{printable(str(exc) or type(exc).__name__, 300)} ({self.path})")

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
