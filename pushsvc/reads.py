"""Documents read from the store: one consistent snapshot per document set."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .documents import DocumentBuilder, dashboard_entry, detail_document, list_document
from .store import Store
from .store.queries import (
    Children,
    find_context,
    list_contexts,
    read_children,
    read_contexts_with_jobs,
    split_context_row,
)


async def read_list_document(
    store: Store, builder: DocumentBuilder, status: str | None = None, limit: int | None = None, offset: int = 0
) -> dict[str, Any]:
    """The REST list body (``count`` counts every matching context, not just the page)."""
    async with store.snapshot() as reader:
        count, rows = await list_contexts(reader, status, limit, offset)
    return list_document(count, [builder.context(row) for row in rows])


async def read_detail_document(store: Store, builder: DocumentBuilder, vm_name: str) -> dict[str, Any] | None:
    """The REST detail body for ``vm_name``, or None when there is no such VM."""
    async with store.snapshot() as reader:
        row = await find_context(reader, vm_name)
        if row is None:
            return None
        context_id = row[0]
        children = (await read_children(reader, [context_id]))[context_id]
    return build_detail(builder, row, children)


def build_detail(builder: DocumentBuilder, row: tuple, children: Children) -> dict[str, Any]:
    """A detail document from a context-with-job row and its children."""
    context_row, job_row = split_context_row(row)
    return detail_document(
        builder.context(context_row),
        builder.job(job_row),
        builder.job_history(children.job_history),
        builder.disks(children.disks),
        builder.cbt_history(children.cbt_history),
    )


def build_dashboard_entry(builder: DocumentBuilder, row: tuple) -> dict[str, Any]:
    context_row, job_row = split_context_row(row)
    return dashboard_entry(builder.context(context_row), builder.job(job_row))


async def read_state(
    store: Store, detail_names: Iterable[str]
) -> tuple[list[tuple], dict[str, tuple], dict[str, Children]]:
    """Everything the poller compares in one snapshot.

    Returns every context-with-job row (ordered by vm_name), the rows of the
    VMs named in ``detail_names`` keyed by name, and their children keyed by
    context id. One statement, plus three when any detail topic is watched.
    """
    wanted = set(detail_names)
    async with store.snapshot() as reader:
        rows = await read_contexts_with_jobs(reader)
        by_name: dict[str, tuple] = {}
        for row in rows:
            if row[1] in wanted and row[1] not in by_name:
                by_name[row[1]] = row
        children = await read_children(reader, [row[0] for row in by_name.values()]) if by_name else {}
    return rows, by_name, children
