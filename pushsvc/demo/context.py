"""``--demo``: the demo database (schema, a dozen VMs) and the simulator that drives it."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from ..config import default_database_url
from ..keys import config_key, zone_key
from ..store import Store, open_store
from ..tasks import cancel_and_wait
from .data import DEMO_MARKER, load_demo
from .simulator import Simulator

log = logging.getLogger(__name__)


def demo_context(simulate: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context: demo rows in an empty database, then (optionally) the simulator.

    A database that already holds VM contexts is left as it is; the simulator
    then drives only VMs an earlier demo wrote, never anyone else's.

    The demo writes through connections of its own, as the appliance would:
    the service's store closes before this context ends (``--demo`` inserts it
    first, so it is cleaned up last), and the simulator must not outlive it.
    """

    async def context(app: web.Application) -> AsyncIterator[None]:
        zone = app[zone_key]

        def clock() -> dt.datetime:
            # The appliance writes naive times in its own zone, which need not be this machine's.
            return dt.datetime.now(zone).replace(tzinfo=None)

        store = open_store(app[config_key].database, default_database_url())
        task = None
        try:
            context_ids = await prepare_demo_database(store, clock())
            if simulate:
                simulator = Simulator(store, context_ids, clock=clock)
                task = asyncio.create_task(simulator.run(), name="demo-simulator")
            yield
        finally:
            if task is not None:
                await cancel_and_wait(task)  # pushsvc/tasks.py: why one cancel() is not enough
            await store.close()

    return context


async def prepare_demo_database(store: Store, now: dt.datetime) -> set[str]:
    """Create the schema if missing and load the demo VMs into an empty database.

    Returns the context ids the simulator may drive.
    """
    if not await store.has_schema():
        log.info("demo: creating the appliance schema")
        await store.create_schema()
    async with store.snapshot() as reader:
        [(existing,)] = await reader.fetch_all("SELECT COUNT(*) FROM vm_replication_contexts")
    if not existing:
        context_ids = await load_demo(store, now)
        log.info("demo: loaded %d demo VMs", len(context_ids))
        return context_ids
    async with store.snapshot() as reader:
        rows = await reader.fetch_all(
            "SELECT context_id FROM vm_replication_contexts WHERE last_operation_summary = %s", [DEMO_MARKER]
        )
    log.info(
        "demo: the database already holds %d VM contexts; leaving them as they are (%d written by an earlier demo)",
        existing,
        len(rows),
    )
    return {context_id for (context_id,) in rows}
