"""The reads behind the REST endpoints and the poller, written once for both engines.

Each function takes a :class:`Reader` (one consistent snapshot) and returns
plain row tuples whose column order is the one ``documents`` declares. The
number of statements never depends on how many VMs are asked for: lists of
contexts are read with one ``IN (...)`` per table, the per-VM "10 newest" and
"20 newest" limits with ``ROW_NUMBER()`` windows (MariaDB 10.2+, SQLite 3.25+).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..documents import CBT_FIELDS, CONTEXT_FIELDS, DISK_FIELDS, JOB_FIELDS, JOB_HISTORY_FIELDS, columns
from .base import Reader

JOB_HISTORY_LIMIT = 10
CBT_HISTORY_LIMIT = 20

CONTEXT_WIDTH = len(CONTEXT_FIELDS)

_CONTEXT_COLUMNS = columns(CONTEXT_FIELDS, "c")
_CONTEXT_WITH_JOB = f"""
    SELECT {_CONTEXT_COLUMNS}, {columns(JOB_FIELDS, "j")}
    FROM vm_replication_contexts c
    LEFT JOIN replication_jobs j ON j.id = c.current_job_id
"""


@dataclass
class Children:
    """A context's rows from the three child tables, in document order."""

    job_history: list[tuple] = field(default_factory=list)
    disks: list[tuple] = field(default_factory=list)
    cbt_history: list[tuple] = field(default_factory=list)


def split_context_row(row: tuple) -> tuple[tuple, tuple]:
    """(context columns, current-job columns) of a row from the context-with-job reads."""
    return row[:CONTEXT_WIDTH], row[CONTEXT_WIDTH:]


async def list_contexts(
    reader: Reader, status: str | None = None, limit: int | None = None, offset: int = 0
) -> tuple[int, list[tuple]]:
    """(number of matching contexts, the requested page of context rows), ordered by vm_name."""
    where, args = ("WHERE c.current_status = %s", [status]) if status else ("", [])
    sql = f"SELECT {_CONTEXT_COLUMNS} FROM vm_replication_contexts c {where} ORDER BY c.vm_name, c.context_id"
    if limit is None and not offset:
        rows = await reader.fetch_all(sql, args)
        return len(rows), rows
    count_rows = await reader.fetch_all(f"SELECT COUNT(*) FROM vm_replication_contexts c {where}", args)
    page_args = [*args, limit if limit is not None else 2**62, offset]
    rows = await reader.fetch_all(sql + " LIMIT %s OFFSET %s", page_args)
    return int(count_rows[0][0]), rows


async def find_context(reader: Reader, vm_name: str) -> tuple | None:
    """The context named exactly ``vm_name`` joined with its current job, or None.

    MariaDB's default collation matches case- and trailing-space-insensitively;
    the index does the coarse match and the exact comparison happens here. If
    two vCenters hold a VM of the same name, the oldest context id wins.
    """
    rows = await reader.fetch_all(_CONTEXT_WITH_JOB + " WHERE c.vm_name = %s ORDER BY c.context_id", [vm_name])
    for row in rows:
        if row[1] == vm_name:
            return row
    return None


async def read_contexts_with_jobs(reader: Reader) -> list[tuple]:
    """Every context joined with its current job, ordered by vm_name (one statement)."""
    return await reader.fetch_all(_CONTEXT_WITH_JOB + " ORDER BY c.vm_name, c.context_id")


async def read_children(reader: Reader, context_ids: Sequence[str]) -> dict[str, Children]:
    """Job history (10 newest non-current), all disks and the 20 newest CBT rows per context.

    Three statements whatever the number of contexts.
    """
    children = {context_id: Children() for context_id in context_ids}
    if not children:
        return children
    ids = list(children)
    marks = ", ".join(["%s"] * len(ids))
    history_columns = ", ".join(column for _, column, _ in JOB_HISTORY_FIELDS)
    history = await reader.fetch_all(
        f"""
        SELECT ranked.vm_context_id, {history_columns} FROM (
            SELECT j.vm_context_id, {columns(JOB_HISTORY_FIELDS, "j")},
                   ROW_NUMBER() OVER (PARTITION BY j.vm_context_id ORDER BY j.created_at DESC, j.id DESC) AS position
            FROM replication_jobs j
            JOIN vm_replication_contexts c ON c.context_id = j.vm_context_id
            WHERE j.vm_context_id IN ({marks})
              AND (c.current_job_id IS NULL OR j.id <> c.current_job_id)
        ) ranked
        WHERE ranked.position <= %s
        ORDER BY ranked.vm_context_id, ranked.position
        """,
        [*ids, JOB_HISTORY_LIMIT],
    )
    for row in history:
        children[row[0]].job_history.append(row[1:])

    disks = await reader.fetch_all(
        f"SELECT {columns(DISK_FIELDS)} FROM vm_disks WHERE vm_context_id IN ({marks}) ORDER BY vm_context_id, id",
        ids,
    )
    for row in disks:
        children[row[2]].disks.append(row)

    cbt_columns = ", ".join(column for _, column, _ in CBT_FIELDS)
    cbt = await reader.fetch_all(
        f"""
        SELECT {cbt_columns} FROM (
            SELECT {cbt_columns},
                   ROW_NUMBER() OVER (PARTITION BY vm_context_id ORDER BY id DESC) AS position
            FROM cbt_history
            WHERE vm_context_id IN ({marks})
        ) ranked
        WHERE ranked.position <= %s
        ORDER BY ranked.vm_context_id, ranked.position
        """,
        [*ids, CBT_HISTORY_LIMIT],
    )
    for row in cbt:
        children[row[2]].cbt_history.append(row)
    return children
