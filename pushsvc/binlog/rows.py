"""Row events of the four watched tables -> the ids they name (the reader thread's side).

Row images are used only to *name* what changed, never as data: a context
row names itself; a job, disk or CBT row names its ``vm_context_id``. When
an image does not carry that column (``binlog_row_image=MINIMAL``, or column
names unknown) the row's primary key is kept instead, for
:func:`pushsvc.binlog.resolve.resolve_contexts` to map with one query; when
not even that is there, the transaction asks for a full re-read.

Column names: MariaDB puts them in the binlog only with
``binlog_row_metadata=FULL`` (the default, ``NO_LOG``, leaves them out and
the library calls the columns ``UNKNOWN_COL<n>``). :class:`ColumnNames` holds
the names by position as ``information_schema`` lists them, used only while
the event's column count matches, so a table altered under us is never read
with the wrong names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pymysqlreplication.row_event import DeleteRowsEvent, RowsEvent, UpdateRowsEvent, WriteRowsEvent

from .batch import PendingChanges

CONTEXTS = "vm_replication_contexts"
JOBS = "replication_jobs"
DISKS = "vm_disks"
CBT = "cbt_history"
WATCHED_TABLES = (CONTEXTS, JOBS, DISKS, CBT)

# Decoding a row image costs 0.1-0.4 ms in pure Python (measured on 5,000-row
# transactions); past this many rows in one transaction, one full read is
# cheaper than decoding the rest, so the transaction asks for that instead.
MAX_ROWS_PER_TRANSACTION = 500


class ColumnNames:
    """Column names by position for the watched tables, as ``information_schema`` lists them."""

    def __init__(self) -> None:
        self._names: dict[str, tuple[str, ...]] = {}

    def replace(self, rows: Iterable[tuple[str, str]]) -> None:
        """Take ``(table, column)`` rows in ordinal order."""
        names: dict[str, list[str]] = {}
        for table, column in rows:
            names.setdefault(table, []).append(column)
        self._names = {table: tuple(columns) for table, columns in names.items()}

    def knows(self, table: str, column_count: int) -> bool:
        """Whether the names held for ``table`` fit an event with ``column_count`` columns."""
        names = self._names.get(table)
        return names is not None and len(names) == column_count

    def position(self, table: str, column: str, column_count: int) -> int | None:
        """The column's position, or None when unknown or the table has changed shape since."""
        names = self._names.get(table)
        if names is None or len(names) != column_count or column not in names:
            return None
        return names.index(column)


class _Image:
    """One row image, looked up by column name whatever the library called the columns."""

    def __init__(self, values: Mapping[str, Any], keys: Mapping[str, str | None]) -> None:
        self.values = values
        self.keys = keys

    def get(self, column: str) -> Any:
        """The column's value; None when it is NULL *or* not in the image.

        The two cannot be told apart reliably: with ``binlog_row_image=MINIMAL``
        the library reports the columns left out of an image as NULLs.
        """
        key = self.keys.get(column)
        return None if key is None else self.values.get(key)


def _rows(event: RowsEvent, keys: Mapping[str, str | None]) -> Iterator[list[_Image]]:
    """Each row's images: before and after for an update, the one image otherwise."""
    for row in event.rows:
        if isinstance(event, UpdateRowsEvent):
            yield [_Image(row["before_values"], keys), _Image(row["after_values"], keys)]
        else:
            yield [_Image(row["values"], keys)]


def _keys(event: RowsEvent, columns: ColumnNames, wanted: tuple[str, ...]) -> dict[str, str | None]:
    """The library's key for each wanted column: its real name, or ``UNKNOWN_COL<position>``."""
    real = {column.name for column in event.columns if column.name}
    count = len(event.columns)
    keys: dict[str, str | None] = {}
    for name in wanted:
        if name in real:
            keys[name] = name
        else:
            position = columns.position(event.table, name, count)
            keys[name] = None if position is None else f"UNKNOWN_COL{position}"
    return keys


def collect(event: RowsEvent, columns: ColumnNames, pending: PendingChanges) -> None:
    """Add what one row event of a watched table names to the transaction's changes."""
    if pending.full_reread is not None:
        return  # everything is read again anyway: do not pay for decoding rows
    table = event.table
    if table == CONTEXTS and isinstance(event, (WriteRowsEvent, DeleteRowsEvent)):
        pending.contexts_changed = True
    if pending.rows >= MAX_ROWS_PER_TRANSACTION:
        pending.full_reread = f"a transaction of more than {MAX_ROWS_PER_TRANSACTION} rows"
        return
    if table == CONTEXTS:
        _collect_contexts(event, columns, pending)
    elif table in (JOBS, DISKS, CBT):
        _collect_children(event, columns, pending)


def _collect_contexts(event: RowsEvent, columns: ColumnNames, pending: PendingChanges) -> None:
    keys = _keys(event, columns, ("context_id",))
    for images in _rows(event, keys):
        pending.rows += 1
        ids = {str(value) for value in (image.get("context_id") for image in images) if value is not None}
        if not ids:
            pending.full_reread = "a context row without its id"
            return
        pending.context_ids |= ids
        pending.named_otherwise |= ids
        if len(ids) > 1:
            pending.contexts_changed = True  # a context's id changed: one VM went, another came


def _collect_children(event: RowsEvent, columns: ColumnNames, pending: PendingChanges) -> None:
    """A job, disk or CBT row names the context(s) it belongs or belonged to; else its key is kept.

    With MINIMAL images an update's before image carries only the key and
    the after image only the changed columns, so a row that moved to another
    VM does not say which VM it left: that asks for a full read. A job whose
    images name no VM keeps its key too: it may be some context's current job.
    """
    keys = _keys(event, columns, ("vm_context_id", "id"))
    table = event.table
    for images in _rows(event, keys):
        pending.rows += 1
        owners = [image.get("vm_context_id") for image in images]
        if owners[0] is None and any(owner is not None for owner in owners[1:]):
            pending.full_reread = f"a {table} row moved from a VM its image does not name"
            return
        named = {str(owner) for owner in owners if owner is not None}
        pending.context_ids |= named
        row_id = next((value for value in (image.get("id") for image in images) if value is not None), None)
        updated_in_place = isinstance(event, UpdateRowsEvent) and len(named) == 1 and None not in owners
        if table == JOBS and updated_in_place and row_id is not None:
            pending.job_updates.add((next(iter(named)), str(row_id)))  # perhaps the context's current job
            continue
        pending.named_otherwise |= named
        if owners[0] is not None and (table != JOBS or None not in owners):
            continue
        if row_id is None:
            pending.full_reread = f"a {table} row without its key"
            return
        if table == JOBS:
            pending.job_ids.add(str(row_id))
        elif table == DISKS:
            pending.disk_ids.add(int(row_id))
        else:
            pending.cbt_ids.add(int(row_id))
