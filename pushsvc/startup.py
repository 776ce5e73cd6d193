"""What start-up says about the database: which one, whether it answers, whether it holds anything.

A service that quietly serves an empty embedded database looks broken for
no stated reason; one that names its database (without the password) and
says what it found there explains itself. Nothing here stops the service:
it starts while the database is down and ``/readyz`` says so.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from .config import default_database_url, parse_database_url
from .keys import config_key, store_key
from .store import StoreUnavailable

log = logging.getLogger(__name__)


async def report_database(app: web.Application) -> None:
    """An ``on_startup`` hook: log the database in use and warn when it cannot serve anything."""
    database = app[config_key].database
    shown = parse_database_url(database.url or default_database_url()).redacted()
    store = app[store_key]
    log.info("database: %s", shown)
    try:
        async with asyncio.timeout(database.connect_timeout + database.query_timeout):
            if not await store.has_schema():
                log.warning(
                    "database %s has no appliance schema (no vm_replication_contexts table): "
                    "REST answers 500 and /readyz 503 until it exists (`run.py schema` creates it)",
                    shown,
                )
                return
            async with store.snapshot() as reader:
                count = (await reader.fetch_all("SELECT COUNT(*) FROM vm_replication_contexts"))[0][0]
    except (StoreUnavailable, TimeoutError) as exc:
        log.warning(
            "database %s does not answer: %s; serving anyway (REST answers 500 and /readyz 503 until it does)",
            shown,
            str(exc) or "timed out",
        )
        return
    if count == 0 and store.engine == "sqlite":
        log.warning(
            "the embedded database %s holds no VM contexts, so there is nothing to show: set database.url "
            "(PUSHSVC_DATABASE_URL) to the appliance's database, or run with --demo for demo data",
            shown,
        )
    else:
        log.info("database holds %d VM contexts", count)
