"""Command line: serve, ``--demo``, ``token`` and ``schema``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path

from aiohttp import web

from .auth import mint_token, parse_ttl
from .config import Config, ConfigError, data_dir, default_database_url, load_config, parse_database_url, validate
from .httpserver import StartupError
from .store import StoreUnavailable, open_store

# The default config is package data, like the GUI: pushsvc/_config.yaml is a
# symlink to the checkout's config.yaml, copied into the wheel by the build.
DEFAULT_CONFIG = Path(str(resources.files("pushsvc").joinpath("_config.yaml")))
DEMO_TIMEZONE = "Europe/London"

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="pushsvc: real-time push for VM-migration progress")
    parser.add_argument("--config", help="YAML config file (default: $PUSHSVC_CONFIG, else pushsvc's config.yaml)")
    parser.add_argument("--demo", action="store_true", help="serve demo data (embedded SQLite unless --database)")
    parser.add_argument("--database", help="database URL (mysql://user:pass@host:port/db or sqlite:///path)")
    parser.add_argument("--no-simulator", action="store_true", help="with --demo: do not simulate replication")
    parser.add_argument("--port", type=int, help="listen port (overrides server.port)")
    commands = parser.add_subparsers(dest="command")
    token = commands.add_parser("token", help="print a signed token for the configured key")
    token.add_argument("--subject", default="operator", help="the token's sub claim (default: operator)")
    token.add_argument("--ttl", default="12h", help="lifetime such as 90s, 30m, 12h, 7d (default: 12h)")
    schema = commands.add_parser("schema", help="create the appliance schema in an empty database")
    schema.add_argument("--database", dest="schema_database", help="database URL (default: database.url)")
    schema.add_argument("--seed", action="store_true", help="also load the seed doc's example rows (pgtest1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = _load(args)
        if args.command == "token":
            print(mint_token(config.auth, args.subject, parse_ttl(args.ttl)))
            return 0
        if args.command == "schema":
            return asyncio.run(_create_schema(config, args.seed))
        if args.demo:
            return serve_demo(config, simulate=not args.no_simulator)
        return serve(config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _load(args: argparse.Namespace) -> Config:
    path = args.config or os.environ.get("PUSHSVC_CONFIG") or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    config = load_config(path)
    database = getattr(args, "schema_database", None) or args.database
    if database:
        config = config.replace("database", url=database)
    if args.port is not None:
        config = config.replace("server", port=args.port)
    validate(config)  # the command line's values too: --port 99999 names server.port
    if args.demo and not config.database.timezone:
        config = config.replace("database", timezone=DEMO_TIMEZONE)
    return config


async def _create_schema(config: Config, seed: bool) -> int:
    # The seed rows belong to the demo package, which the service never
    # imports: this command loads it lazily, as --demo does.
    from .demo.seed import load_seed

    store = open_store(config.database, default_database_url())
    try:
        await store.create_schema()
        if seed:
            await load_seed(store)
    except StoreUnavailable as exc:
        print(f"database unavailable: {exc}", file=sys.stderr)
        return 1
    finally:
        await store.close()
    print("schema created" + (" and seed rows loaded" if seed else ""))
    return 0


def serve_demo(config: Config, *, simulate: bool) -> int:
    """``--demo``: the service plus the demo's rows and simulator.

    The demo depends on the service, never the reverse, so this command
    imports the demo package lazily (as ``schema --seed`` does). Without
    ``--database`` the demo gets a fresh embedded database, claimed under a
    lock before any file is touched: a second demo says so in one line and
    leaves the running one alone.
    """
    from .demo import DemoRunning, claim_demo_database, demo_context

    if config.database.url:
        return serve(config, demo=demo_context(simulate))
    path = data_dir() / "demo.db"
    try:
        lock = claim_demo_database(path)
    except DemoRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with lock:
        return serve(config.replace("database", url=f"sqlite://{path}"), demo=demo_context(simulate))


def serve(config: Config, *, demo: CleanupContext | None = None) -> int:
    """Run the service until SIGINT or SIGTERM; ``demo`` is started first and stopped last.

    A start-up failure raises StartupError (one line, no secret).
    """
    from .app import create_app
    from .httpserver import serve as serve_http
    from .startup import report_database

    logging.basicConfig(level=config.server.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    if demo is not None:
        app.cleanup_ctx.insert(0, demo)
    app.on_startup.append(report_database)
    tune_garbage_collector()
    host, port = config.server.host, config.server.port

    def announce() -> None:
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
        print(f"pushsvc listening on http://{shown}:{port}/", flush=True)
        if demo is not None:
            token = mint_token(config.auth, "demo-operator", parse_ttl("12h"))
            print(f"Dashboard: http://{shown}:{port}/  (paste the token below to sign in)", flush=True)
            print(f"Token (12h): {token}", flush=True)

    try:
        asyncio.run(
            serve_http(
                app,
                host,
                port,
                access_log=logging.getLogger("pushsvc.access") if config.server.access_log else None,
                shutdown_timeout=config.server.shutdown_timeout,
                on_listening=announce,
            )
        )
    except StoreUnavailable as exc:
        url = parse_database_url(config.database.url or default_database_url()).redacted()
        raise StartupError(f"database.url {url}: {exc}") from None
    return 0


def tune_garbage_collector() -> None:
    """Collect rarely enough that thousands of long-lived sockets do not stall the loop.

    With CPython's default thresholds (700, 10, 10) the objects each socket's
    heartbeat keeps for a few seconds (timers, ping tasks) are promoted to the
    oldest generation, so with 10,000 sockets a full collection, about 0.8 s
    with the event loop frozen, ran every few seconds. Objects that live
    seconds now die before promotion; what start-up allocated is frozen out
    of every collection (docs/benchmarks.md has the numbers).
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
