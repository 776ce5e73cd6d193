"""Command line: serve, ``--demo``, ``token`` and ``schema``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
from pathlib import Path

from .auth import mint_token, parse_ttl
from .config import Config, ConfigError, data_dir, load_config, parse_database_url, validate
from .httpserver import StartupError
from .store import StoreUnavailable, open_store

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"
DEMO_TIMEZONE = "Europe/London"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description="pushsvc: real-time push for VM-migration progress")
    parser.add_argument("--config", help="YAML config file (default: config.yaml beside run.py, or $PUSHSVC_CONFIG)")
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
        return serve(config, demo=args.demo, simulate=not args.no_simulator)
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
    if args.demo:
        if not config.database.timezone:
            config = config.replace("database", timezone=DEMO_TIMEZONE)
        if not config.database.url:
            path = data_dir() / "demo.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            config = config.replace("database", url=f"sqlite://{path}")
    return config


async def _create_schema(config: Config, seed: bool) -> int:
    from .app import default_database_url
    from .fixtures import load_seed

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


def serve(config: Config, *, demo: bool = False, simulate: bool = True) -> int:
    """Run the service until SIGINT or SIGTERM; a start-up failure raises StartupError (one line, no secret)."""
    from .app import create_app, default_database_url
    from .httpserver import serve as serve_http
    from .startup import report_database

    logging.basicConfig(level=config.server.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    if demo:
        from .demo import demo_context

        app.cleanup_ctx.insert(0, demo_context(simulate))
    app.on_startup.append(report_database)
    tune_garbage_collector()
    host, port = config.server.host, config.server.port

    def announce() -> None:
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
        print(f"pushsvc listening on http://{shown}:{port}/", flush=True)
        if demo:
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
