"""``create_app(config)``: wires keys, background tasks, middlewares and routes.

Nothing here talks to the database: the store connects lazily, so the
service starts (and ``/readyz`` says so) while the database is down.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path

from aiohttp import web

from . import api, apidocs, ws
from .accesslog import AccessLogger
from .auth import TokenVerifier
from .broker import Broker, LocalBroker
from .changes import BinlogDriver
from .config import Config, default_database_url, parse_database_url
from .documents import DocumentBuilder
from .errors import error_response
from .headers import add_security_headers
from .hub import Hub
from .keys import (
    broker_key,
    builder_key,
    changes_key,
    config_key,
    hub_key,
    metrics_key,
    poller_key,
    read_outage_key,
    rest_cache_key,
    sockets_key,
    store_key,
    trusted_proxies_key,
    verifier_key,
    zone_key,
)
from .metrics import Metrics
from .middleware import auth_middleware, error_middleware, proxy_middleware
from .outage import OutageLog
from .poller import Poller
from .protocol import GOING_AWAY
from .proxy import TrustedProxies
from .restcache import RestCache
from .session import Session
from .store import Store, open_store
from .tasks import cancel_and_wait
from .timefmt import resolve_zone

log = logging.getLogger(__name__)

# The GUI is package data, so a wheel install serves it too. pushsvc/_static is
# a symlink to the checkout's static/ (the one source); a wheel build copies
# the files in its place (pyproject.toml, package-data).
STATIC_DIR = Path(str(resources.files(__package__).joinpath("_static")))

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(config: Config, *, store: Store | None = None, run_poller: bool = True) -> web.Application:
    """The service. ``run_poller=False`` leaves ticking to the caller (``poll_once``), for tests."""
    app = web.Application(
        middlewares=[error_middleware, proxy_middleware, auth_middleware],
        client_max_size=64 * 1024,
        handler_args={"access_log_class": AccessLogger, "keepalive_timeout": config.server.keepalive_timeout},
    )
    zone = resolve_zone(config.database.timezone)
    metrics = Metrics()
    store = store or open_store(config.database, default_database_url())
    builder = DocumentBuilder(zone)
    # The live path, one way: store -> poller -> broker -> hub -> session -> socket.
    broker = _broker(config, metrics)
    limits = config.websocket
    hub = Hub(broker, limits.history_size, limits.history_bytes, limits.history_total_bytes)
    poller = Poller(store, builder, broker, config.poller, metrics)
    rest_cache = RestCache(
        hub, interval=config.poller.interval, margin=config.rest.freshness_margin, ttl=config.rest.live_ttl
    )
    changes = None
    if config.poller.source == "binlog":
        url = parse_database_url(config.database.url or default_database_url())
        changes = BinlogDriver(poller, broker, url, config.poller, metrics)
    metrics.subscriptions.set_function(lambda: hub.subscription_count - rest_cache.live_topics)
    metrics.topics.set_function(lambda: len(hub.topics))
    metrics.rest_live_topics.set_function(lambda: rest_cache.live_topics)
    metrics.history_bytes.set_function(lambda: hub.history.bytes)

    app[config_key] = config
    app[zone_key] = zone
    app[metrics_key] = metrics
    app[store_key] = store
    app[builder_key] = builder
    app[verifier_key] = TokenVerifier(config.auth)
    app[broker_key] = broker
    app[hub_key] = hub
    app[poller_key] = poller
    app[rest_cache_key] = rest_cache
    app[changes_key] = changes
    app[sockets_key] = set()
    app[read_outage_key] = OutageLog(api.log, "REST database reads")
    app[trusted_proxies_key] = TrustedProxies(config.server.trusted_proxies)

    app.cleanup_ctx.append(store_context)
    app.cleanup_ctx.append(broker_context)
    app.cleanup_ctx.append(rest_cache_context)
    if run_poller:
        app.cleanup_ctx.append(poller_context)
    app.on_shutdown.append(close_sockets)
    app.on_cleanup.append(close_verifier)
    app.on_response_prepare.append(add_security_headers)

    app.router.add_get("/api/v1/vm-contexts", api.list_vm_contexts)
    app.router.add_get("/api/v1/vm-contexts/{vm_name}", api.get_vm_context)
    app.router.add_get("/api/v1/ws", ws.websocket_handler)
    app.router.add_get("/api/v1/gui-settings", api.gui_settings)
    app.router.add_get("/api/v1/openapi.json", apidocs.openapi_handler())
    app.router.add_get("/api/v1/asyncapi.json", apidocs.asyncapi_handler())
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/readyz", api.readyz)
    app.router.add_get("/metrics", api.metrics)
    static_dir = Path(config.server.static_dir) if config.server.static_dir else STATIC_DIR
    if static_dir.is_dir():
        app.router.add_get("/", _index(static_dir / "index.html"))
        app.router.add_static("/static/", static_dir, append_version=False)
    return app


def _broker(config: Config, metrics: Metrics) -> Broker:
    """In process by default; with ``broker.url``, the Redis cluster (imported only then)."""
    if not config.broker.url:
        return LocalBroker(epoch=f"{int(time.time()):x}-{secrets.token_hex(4)}")
    from .cluster.broker import RedisBroker

    return RedisBroker(
        config.broker,
        history_size=config.websocket.history_size,
        interval=config.poller.interval,
        metrics=metrics,
    )


def _index(path: Path) -> Handler:
    async def index(request: web.Request) -> web.StreamResponse:
        if not path.is_file():  # noqa: ASYNC240 - one stat of a local file
            return error_response(404, "Not found")
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    return index


async def store_context(app: web.Application) -> AsyncIterator[None]:
    store = app[store_key]
    if store.engine == "sqlite" and not await store.has_schema():
        # The embedded database is ours: give a fresh file the appliance's tables.
        # A MariaDB database is the appliance's and is never changed.
        await store.create_schema()
    yield
    await store.close()


async def broker_context(app: web.Application) -> AsyncIterator[None]:
    """The broker delivers to the hub and wakes the poller when a topic gains its first watcher."""
    broker = app[broker_key]
    await broker.open(app[hub_key], app[poller_key].wake)
    yield
    await broker.close()


async def rest_cache_context(app: web.Application) -> AsyncIterator[None]:
    """REST's leases end with the app (their expiry timer must not outlive the loop)."""
    yield
    app[rest_cache_key].close()


async def poller_context(app: web.Application) -> AsyncIterator[None]:
    """The poll loop and, with ``poller.source: binlog``, the binlog driver beside it."""
    task = asyncio.create_task(app[poller_key].run(), name="poller")
    changes = app[changes_key]
    binlog = None if changes is None else asyncio.create_task(changes.run(), name="binlog")
    yield
    if binlog is not None:
        await cancel_and_wait(binlog)  # stops the binlog reader thread
    await cancel_and_wait(task)  # logs a poller that had failed or would not stop


async def close_verifier(app: web.Application) -> None:
    """The JWKS client's HTTP session, if any."""
    await app[verifier_key].close()


async def close_sockets(app: web.Application) -> None:
    """Shutdown: every socket gets 1001 before the poller and the store stop."""
    open_sessions: set[Session] = app[sockets_key]
    sessions = list(open_sessions)
    for session in sessions:
        session.close(GOING_AWAY)
    await asyncio.gather(*(session.closed() for session in sessions), return_exceptions=True)
    log.info("closed %d WebSocket sessions (1001)", len(sessions))
