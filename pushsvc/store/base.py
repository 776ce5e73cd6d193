"""The database seam: one small async interface, one implementation per engine.

Implementations return rows as plain tuples in the column order of the SQL
they were given. SQL is written once with ``%s`` placeholders (always
parameterised); the SQLite implementation translates them.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

Args = Sequence[Any]


def placeholders(values: Collection[object]) -> str:
    """``%s, %s, ...``: one parameter marker per value, for ``IN (...)`` and ``VALUES (...)``.

    The values themselves always go as arguments, never into the SQL.
    """
    return ", ".join(["%s"] * len(values))


class StoreUnavailable(Exception):
    """The database could not be reached or did not answer in time."""


class Reader(abc.ABC):
    """Statements inside one consistent read (or one write transaction)."""

    @abc.abstractmethod
    async def fetch_all(self, sql: str, args: Args = ()) -> list[tuple[Any, ...]]:
        """Run a SELECT and return every row."""


class Writer(Reader):
    @abc.abstractmethod
    async def execute(self, sql: str, args: Args = ()) -> int:
        """Run a statement; return the number of affected rows."""

    @abc.abstractmethod
    async def insert(self, sql: str, args: Args = ()) -> int:
        """Run an INSERT; return the new row's auto-increment id."""


class Store(abc.ABC):
    """A database pushsvc reads (and the demo simulator and tests write)."""

    engine: str

    def __init__(self) -> None:
        # Every statement sent to the server, transaction control included:
        # the poller's "queries per tick" and the /metrics counter read this.
        self.statements = 0

    @abc.abstractmethod
    def snapshot(self) -> AbstractAsyncContextManager[Reader]:
        """A read-only transaction: every SELECT inside sees the same state."""

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Writer]:
        """A read-write transaction, committed when the block exits normally."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers a trivial query."""

    @abc.abstractmethod
    async def has_schema(self) -> bool:
        """Whether the appliance's tables exist (vm_replication_contexts stands for them)."""

    @abc.abstractmethod
    async def create_schema(self) -> None:
        """Create the appliance's tables in an empty database (dev, demo, tests)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release every connection."""
