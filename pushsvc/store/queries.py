"""The reads behind the REST endpoints and the poller, written once for both engines.

Each function takes a :class:`Reader` (one consistent snapshot) and returns
the named rows of ``rows`` (their ``_fields`` are the SELECT lists). The
number of statements never depends on how many VMs are asked for: lists of
contexts are read with one ``IN (...)`` per table, the per-VM "10 newest" and
"20 newest" limits with ``ROW_NUMBER()`` windows (MariaDB 10.2+, SQLite 3.25+).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from .base import Reader, placeholders
from .rows import (
    CbtRow,
    Children,
    ContextRow,
    ContextWithJob,
    DiskRow,
    JobHistoryRow,
    JobRow,
    LastJobRow,
    columns,
)

__all__ = [
    "Children",
    "find_context",
    "list_contexts",
    "read_children",
    "read_contexts_with_jobs",
    "read_contexts_with_jobs_named",
    "read_last_jobs",
]

JOB_HISTORY_LIMIT = 10
CBT_HISTORY_LIMIT = 20

_CONTEXT_WIDTH = len(ContextRow._fields)
_JOB_WIDTH = len(JobRow._fields)
_CONTEXT_COLUMNS = columns(ContextRow._fields, "c")
_LAST_JOB_COLUMNS = columns(LastJobRow._fields, "l")


def _newest_other_jobs(where: str = "") -> str:
    """A derived table ``(context_id, job_id)``: each context's last job, the newest job other than its current one.

    "Newest" is the job history's order (``created_at DESC, id DESC``; a NULL
    ``created_at`` sorts last on both engines, ties on ``created_at`` go to the
    greater id in the database's collation), so the last job is always the first
    entry of the detail's ``job_history``. The appliance has no index on
    ``(vm_context_id, created_at)``: the subquery reads a context's jobs through
    ``idx_replication_jobs_vm_context`` and keeps the newest (docs/decisions.md
    has the cost). ``DISTINCT`` makes MariaDB materialize this table, which
    runs the subquery once per context; merged into the outer join, it ran it
    three times per row (``ANALYZE``). ``where`` filters the contexts (``n``).
    """
    return f"""(
        SELECT DISTINCT n.context_id, (
            SELECT o.id FROM replication_jobs o
            WHERE o.vm_context_id = n.context_id AND (n.current_job_id IS NULL OR o.id <> n.current_job_id)
            ORDER BY o.created_at DESC, o.id DESC
            LIMIT 1
        ) AS job_id
        FROM vm_replication_contexts n {where}
    )"""


def _context_with_jobs(where: str = "") -> str:
    """Contexts (``c``) with their current job (``j``) and last job (``l``).

    ``where`` filters the contexts whose last job is looked up (``n``).
    """
    return f"""
    SELECT {_CONTEXT_COLUMNS}, {columns(JobRow._fields, "j")}, {_LAST_JOB_COLUMNS}
    FROM vm_replication_contexts c
    LEFT JOIN replication_jobs j ON j.id = c.current_job_id
    LEFT JOIN {_newest_other_jobs(where)} newest ON newest.context_id = c.context_id
    LEFT JOIN replication_jobs l ON l.id = newest.job_id
    """


_CONTEXTS_WITH_JOBS = _context_with_jobs() + " ORDER BY c.vm_name, c.context_id"
_CONTEXT_WITH_JOBS_BY_NAME = _context_with_jobs("WHERE n.vm_name = %s") + " WHERE c.vm_name = %s ORDER BY c.context_id"


def _context_with_job(row: tuple[Any, ...]) -> ContextWithJob:
    """Split a row of ``_context_with_jobs``; a NULL id means that LEFT JOIN found no job."""
    job = row[_CONTEXT_WIDTH : _CONTEXT_WIDTH + _JOB_WIDTH]
    last = row[_CONTEXT_WIDTH + _JOB_WIDTH :]
    return ContextWithJob(
        ContextRow._make(row[:_CONTEXT_WIDTH]),
        None if job[0] is None else JobRow._make(job),
        None if last[0] is None else LastJobRow._make(last),
    )


async def list_contexts(
    reader: Reader, status: str | None = None, limit: int | None = None, offset: int = 0
) -> tuple[int, list[ContextRow]]:
    """(number of matching contexts, the requested page of context rows), ordered by vm_name."""
    where, args = ("WHERE c.current_status = %s", [status]) if status else ("", [])
    sql = f"SELECT {_CONTEXT_COLUMNS} FROM vm_replication_contexts c {where} ORDER BY c.vm_name, c.context_id"
    if limit is None and not offset:
        rows = await reader.fetch_all(sql, args)
        return len(rows), [ContextRow._make(row) for row in rows]
    [(count,)] = await reader.fetch_all(f"SELECT COUNT(*) FROM vm_replication_contexts c {where}", args)
    page_args = [*args, limit if limit is not None else 2**62, offset]
    rows = await reader.fetch_all(sql + " LIMIT %s OFFSET %s", page_args)
    return int(count), [ContextRow._make(row) for row in rows]


async def find_context(reader: Reader, vm_name: str) -> ContextWithJob | None:
    """The context named exactly ``vm_name`` joined with its current and last job, or None.

    MariaDB's default collation matches case- and trailing-space-insensitively;
    the index does the coarse match and the exact comparison happens here. If
    two vCenters hold a VM of the same name, the oldest context id wins.
    """
    rows = await reader.fetch_all(_CONTEXT_WITH_JOBS_BY_NAME, [vm_name, vm_name])
    for row in rows:
        found = _context_with_job(row)
        if found.context.vm_name == vm_name:
            return found
    return None


async def read_contexts_with_jobs(reader: Reader) -> list[ContextWithJob]:
    """Every context joined with its current and last job, ordered by vm_name (one statement)."""
    rows = await reader.fetch_all(_CONTEXTS_WITH_JOBS)
    return [_context_with_job(row) for row in rows]


async def read_contexts_with_jobs_named(
    reader: Reader, context_ids: Collection[str], names: Collection[str] = ()
) -> list[ContextWithJob]:
    """The contexts that share a VM name with ``context_ids`` or carry one of ``names``, with their jobs.

    The targeted counterpart of :func:`read_contexts_with_jobs` (same rows,
    same order, one statement): a dashboard entry or detail topic is keyed by
    VM name and shows the oldest context of that name, so re-reading one
    context means re-reading every context of its new name, and of its old
    name (``names``) when it was renamed or deleted. The name match is the
    column's collation (case-insensitive in MariaDB), so callers compare
    names exactly themselves, as :func:`find_context` does.
    """
    ids, known = sorted(context_ids), sorted(names)
    conditions, args = [], []
    if ids:
        conditions.append(f"t.context_id IN ({placeholders(ids)})")
        args += ids
    if known:
        conditions.append(f"t.vm_name IN ({placeholders(known)})")
        args += known
    if not conditions:
        return []
    named = f"vm_name IN (SELECT t.vm_name FROM vm_replication_contexts t WHERE {' OR '.join(conditions)})"
    # The same names filter twice: the contexts (c), and those whose last job is looked up (n).
    sql = _context_with_jobs(f"WHERE n.{named}") + f" WHERE c.{named} ORDER BY c.vm_name, c.context_id"
    rows = await reader.fetch_all(sql, [*args, *args])
    return [_context_with_job(row) for row in rows]


async def read_last_jobs(reader: Reader, context_ids: Sequence[str]) -> dict[str, LastJobRow]:
    """The last job of each of ``context_ids`` that has one (one statement)."""
    if not context_ids:
        return {}
    ids = list(dict.fromkeys(context_ids))
    marks = placeholders(ids)
    rows = await reader.fetch_all(
        f"SELECT newest.context_id, {_LAST_JOB_COLUMNS}"
        f" FROM {_newest_other_jobs(f'WHERE n.context_id IN ({marks})')} newest"
        " JOIN replication_jobs l ON l.id = newest.job_id",
        ids,
    )
    return {context_id: LastJobRow._make(last) for context_id, *last in rows}


async def read_children(reader: Reader, context_ids: Sequence[str]) -> dict[str, Children]:
    """Job history (10 newest non-current), all disks and the 20 newest CBT rows per context.

    Three statements whatever the number of contexts.
    """
    children = {context_id: Children() for context_id in context_ids}
    if not children:
        return children
    ids = list(children)
    marks = placeholders(ids)
    history_columns = columns(JobHistoryRow._fields)
    history = await reader.fetch_all(
        f"""
        SELECT ranked.vm_context_id, {history_columns} FROM (
            SELECT j.vm_context_id, {columns(JobHistoryRow._fields, "j")},
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
    for context_id, *job in history:
        children[context_id].job_history.append(JobHistoryRow._make(job))

    disks = await reader.fetch_all(
        f"SELECT {columns(DiskRow._fields)} FROM vm_disks WHERE vm_context_id IN ({marks}) ORDER BY vm_context_id, id",
        ids,
    )
    for row in disks:
        disk = DiskRow._make(row)
        children[disk.vm_context_id].disks.append(disk)

    cbt_columns = columns(CbtRow._fields)
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
        entry = CbtRow._make(row)
        children[entry.vm_context_id].cbt_history.append(entry)
    return children
