"""A change batch -> the contexts to re-read, with at most one query.

Rows whose image named their context need nothing. Jobs, disks and CBT rows
known only by their key are looked up in one parameterised ``UNION ALL``;
a job counts for its own ``vm_context_id`` and for any context whose
``current_job_id`` it is. A key that is no longer there (the row was deleted
and its image did not say whose it was) cannot be placed: then the answer is
"read everything", which is always correct.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..store.base import Reader, placeholders
from .batch import ChangeBatch

# More keys than this in one batch: one full read is cheaper than a long IN list.
MAX_KEYS = 1000


@dataclass(frozen=True)
class ContextTargets:
    """What a batch asks the consumer to read: ``read_all``, or just ``context_ids``."""

    context_ids: frozenset[str]
    read_all: bool
    reason: str | None = None


async def resolve_contexts(reader: Reader, batch: ChangeBatch) -> ContextTargets:
    """The contexts ``batch`` touched; one query when it holds keys, none otherwise."""
    if batch.full_reread is not None:
        return ContextTargets(batch.context_ids, read_all=True, reason=batch.full_reread)
    keys = len(batch.job_ids) + len(batch.disk_ids) + len(batch.cbt_ids)
    if keys == 0:
        return ContextTargets(batch.context_ids, read_all=False)
    if keys > MAX_KEYS:
        return ContextTargets(batch.context_ids, read_all=True, reason=f"more than {MAX_KEYS} rows to place")
    jobs, disks, cbt = sorted(batch.job_ids), sorted(batch.disk_ids), sorted(batch.cbt_ids)
    parts: list[str] = []
    args: list[Any] = []
    if jobs:
        parts.append(f"SELECT 'job', id, vm_context_id FROM replication_jobs WHERE id IN ({placeholders(jobs)})")
        parts.append(
            "SELECT 'job', current_job_id, context_id FROM vm_replication_contexts"
            f" WHERE current_job_id IN ({placeholders(jobs)})"
        )
        args += jobs + jobs
    if disks:
        parts.append(f"SELECT 'disk', id, vm_context_id FROM vm_disks WHERE id IN ({placeholders(disks)})")
        args += disks
    if cbt:
        parts.append(f"SELECT 'cbt', id, vm_context_id FROM cbt_history WHERE id IN ({placeholders(cbt)})")
        args += cbt
    rows = await reader.fetch_all(" UNION ALL ".join(parts), args)
    found: set[tuple[str, str]] = set()
    contexts = set(batch.context_ids)
    for kind, key, context_id in rows:
        found.add((str(kind), str(key)))
        if context_id is not None:
            contexts.add(str(context_id))
    wanted = {("job", key) for key in jobs} | {("disk", str(key)) for key in disks} | {("cbt", str(key)) for key in cbt}
    missing = len(wanted - found)
    if missing:
        return ContextTargets(frozenset(contexts), read_all=True, reason=f"{missing} changed rows are gone")
    return ContextTargets(frozenset(contexts), read_all=False)
