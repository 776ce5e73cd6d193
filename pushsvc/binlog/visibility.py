"""Wait until a change batch's transactions are visible to new reads.

MariaDB hands a transaction's binlog events to replication clients when they
are written to the binary log, which happens *before* the storage engine's
commit makes the rows visible to other connections (the two-phase commit's
last step). A read that follows an event at once can therefore miss the
very change the event announced, and nothing would announce it again: the
client would show the old row until the next safety-net read. The gap is
usually well under a millisecond and grows under load; block/spirit#1080
and #746 describe the same race for MySQL.

MariaDB closes it exactly: ``START TRANSACTION WITH CONSISTENT SNAPSHOT``
records the binlog position its snapshot corresponds to, in the
``binlog_snapshot_file`` and ``binlog_snapshot_position`` status variables;
every transaction that ends at or before that position is visible in the
snapshot, and so in every read that starts later. :func:`visible_snapshot`
opens such snapshots until the position reaches the batch's end (usually
the first one does) and hands that transaction over, so the batch's reads
run in it: no second transaction, and one round trip fewer before the
publication. :func:`wait_until_visible` only waits (for reads that open
transactions of their own). It needs no privilege beyond ``SELECT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import NamedTuple

from ..store import Reader, Store

FIRST_PAUSE = 0.001  # seconds before asking again; doubled up to MAX_PAUSE
MAX_PAUSE = 0.05


class BinlogCoordinate(NamedTuple):
    """A position in the binary log: a file name (``mariadb-bin.000012``) and a byte offset in it."""

    file: str
    offset: int

    def at_or_past(self, other: BinlogCoordinate) -> bool:
        """Whether this position is at or after ``other`` (files compare by their sequence number)."""
        mine, theirs = _file_number(self.file), _file_number(other.file)
        if mine is None or theirs is None:
            return True  # not comparable: never hold a read back on a guess
        return (mine, self.offset) >= (theirs, other.offset)


def _file_number(name: str) -> int | None:
    match = re.search(r"\.(\d+)$", name)
    return int(match.group(1)) if match else None


async def start_consistent_snapshot(reader: Reader) -> BinlogCoordinate | None:
    """Start a consistent snapshot on ``reader``'s connection: the binlog position it corresponds to.

    None when the server names none.
    """
    await reader.fetch_all("START TRANSACTION WITH CONSISTENT SNAPSHOT")
    rows = await reader.fetch_all("SHOW STATUS LIKE 'binlog_snapshot_%'")
    values = {str(name).lower(): value for name, value in rows}
    file, offset = values.get("binlog_snapshot_file"), values.get("binlog_snapshot_position")
    if not file or offset is None:
        return None
    return BinlogCoordinate(str(file), int(offset))


class VisibleSnapshot(NamedTuple):
    reader: Reader  # inside a consistent snapshot
    waits: int | None  # how many times it had to wait (0: at once); None: ``end`` still not visible at the deadline


@contextlib.asynccontextmanager
async def visible_snapshot(store: Store, end: BinlogCoordinate, patience: float) -> AsyncIterator[VisibleSnapshot]:
    """A read-only transaction that sees every transaction up to ``end`` (after ``patience`` seconds: the latest).

    Raises :class:`~pushsvc.store.StoreUnavailable` like any read.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    pause, waits = FIRST_PAUSE, 0
    while True:
        async with store.snapshot() as reader:
            seen = await start_consistent_snapshot(reader)
            visible = seen is None or seen.at_or_past(end)
            if visible or loop.time() + pause > deadline:
                yield VisibleSnapshot(reader, waits if visible else None)
                return
        await asyncio.sleep(pause)
        pause, waits = min(pause * 2, MAX_PAUSE), waits + 1


async def wait_until_visible(store: Store, end: BinlogCoordinate, patience: float) -> int | None:
    """Wait until reads see every transaction up to ``end``: how many times it had to wait (0: at once).

    None when they still did not after ``patience`` seconds. Raises
    :class:`~pushsvc.store.StoreUnavailable` like any read.
    """
    async with visible_snapshot(store, end, patience) as snapshot:
        return snapshot.waits
