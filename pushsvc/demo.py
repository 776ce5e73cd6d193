"""``--demo``: create the schema and demo rows in the demo database."""

from __future__ import annotations

from typing import AsyncIterator, Callable

from aiohttp import web

from .fixtures import load_seed
from .keys import store_key


def demo_context(simulate: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        store = app[store_key]
        async with store.snapshot() as reader:
            tables = await _has_schema(reader, store.engine)
        if not tables:
            await store.create_schema()
        async with store.snapshot() as reader:
            existing = (await reader.fetch_all("SELECT COUNT(*) FROM vm_replication_contexts"))[0][0]
        if not existing:
            await load_seed(store)
        yield

    return context


async def _has_schema(reader, engine: str) -> bool:
    if engine == "sqlite":
        rows = await reader.fetch_all(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = %s", ["vm_replication_contexts"]
        )
    else:
        rows = await reader.fetch_all(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s",
            ["vm_replication_contexts"],
        )
    return bool(rows)
