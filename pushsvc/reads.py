"""Documents read from the store: one consistent snapshot per document set."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

from .documents import DocumentBuilder, dashboard_entry, detail_document, list_document, list_item_with_last_job
from .store import Reader, Store
from .store.queries import (
    find_context,
    list_contexts,
    read_children,
    read_contexts_with_jobs,
    read_contexts_with_jobs_named,
    read_last_jobs,
)
from .store.rows import Children, ContextWithJob

# What ``include`` may add to each REST list item (protocol.md, "REST").
LAST_JOB = "last_job"
LIST_INCLUDES = (LAST_JOB,)


async def read_list_document(
    store: Store,
    builder: DocumentBuilder,
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    include: Collection[str] = (),
) -> dict[str, Any]:
    """The REST list body (``count`` counts every matching context, not just the page).

    Without ``include`` it is exactly the seed's; ``include`` names of
    ``LIST_INCLUDES`` add those fields to each item, read in the same snapshot.
    """
    with_last_job = LAST_JOB in include
    async with store.snapshot() as reader:
        count, rows = await list_contexts(reader, status, limit, offset)
        last_jobs = await read_last_jobs(reader, [row.context_id for row in rows]) if with_last_job else {}
    if not with_last_job:
        return list_document(count, [builder.context(row) for row in rows])
    items = [
        list_item_with_last_job(builder.context(row), builder.last_job(last_jobs.get(row.context_id))) for row in rows
    ]
    return list_document(count, items)


async def read_detail_document(store: Store, builder: DocumentBuilder, vm_name: str) -> dict[str, Any] | None:
    """The REST detail body for ``vm_name``, or None when there is no such VM."""
    async with store.snapshot() as reader:
        row = await find_context(reader, vm_name)
        if row is None:
            return None
        context_id = row.context.context_id
        children = (await read_children(reader, [context_id]))[context_id]
    return build_detail(builder, row, children)


def build_detail(builder: DocumentBuilder, row: ContextWithJob, children: Children) -> dict[str, Any]:
    """A detail document from a context-with-job row and its children."""
    return detail_document(
        builder.context(row.context),
        builder.job(row.job),
        builder.job_history(children.job_history),
        builder.disks(children.disks),
        builder.cbt_history(children.cbt_history),
    )


def build_dashboard_entry(builder: DocumentBuilder, row: ContextWithJob) -> dict[str, Any]:
    """A ``vm-contexts`` item from a context-with-jobs row."""
    return dashboard_entry(builder.context(row.context), builder.job(row.job), builder.last_job(row.last_job))


async def read_state(
    store: Store, detail_names: Iterable[str]
) -> tuple[list[ContextWithJob], dict[str, ContextWithJob], dict[str, Children]]:
    """Everything the poller compares in one snapshot.

    Returns every context-with-job row (ordered by vm_name), the rows of the
    VMs named in ``detail_names`` keyed by name, and their children keyed by
    context id. One statement, plus three when any detail topic is watched.
    """
    wanted = set(detail_names)
    async with store.snapshot() as reader:
        rows = await read_contexts_with_jobs(reader)
        by_name: dict[str, ContextWithJob] = {}
        for row in rows:
            name = row.context.vm_name
            if name in wanted and name not in by_name:
                by_name[name] = row
        ids = [row.context.context_id for row in by_name.values()]
        children = await read_children(reader, ids) if ids else {}
    return rows, by_name, children


async def read_named_state(
    store: Store,
    context_ids: Collection[str],
    old_names: Collection[str],
    detail_names: Iterable[str],
    known_children: Callable[[ContextWithJob], Children | None] = lambda row: None,
    snapshot: Callable[[], AbstractAsyncContextManager[Reader]] | None = None,
) -> tuple[set[str], dict[str, ContextWithJob], dict[str, Children]]:
    """What :func:`read_state` would say about some VMs only, in one snapshot.

    ``context_ids`` changed; ``old_names`` are the names they were last shown
    under. Returns every VM name whose row may have changed (``old_names``
    plus the contexts' current names), the row shown under each of those
    names (absent: no context of that name any more), and the children of
    the rows shown under ``detail_names`` among them. One statement, plus
    three when a detail topic is among the names, unless ``known_children``
    vouches for every such row's children (given the row just read).
    ``snapshot`` opens the transaction to read in (``store.snapshot`` unless
    given: the binlog source passes one that first waits for its commits).
    """
    wanted = set(detail_names)
    async with (snapshot or store.snapshot)() as reader:
        rows = await read_contexts_with_jobs_named(reader, context_ids, old_names)
        names = set(old_names)
        names.update(row.context.vm_name for row in rows if row.context.context_id in context_ids)
        shown: dict[str, ContextWithJob] = {}
        for row in rows:  # ordered as read_state's rows: the first of each exact name is the one shown
            name = row.context.vm_name
            if name in names and name not in shown:
                shown[name] = row
        children: dict[str, Children] = {}
        ids = []
        for name, row in shown.items():
            if name in wanted:
                known = known_children(row)
                if known is None:
                    ids.append(row.context.context_id)
                else:
                    children[row.context.context_id] = known
        if ids:
            children.update(await read_children(reader, ids))
    return names, shown, children
