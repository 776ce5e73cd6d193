"""Database access: ``open_store(config)`` picks the engine from the URL."""

from __future__ import annotations

from ..config import DatabaseConfig, parse_database_url
from .base import Reader, Store, StoreUnavailable, Writer, placeholders

__all__ = ["Reader", "Store", "StoreUnavailable", "Writer", "open_store", "placeholders"]


def open_store(database: DatabaseConfig, default_url: str = "") -> Store:
    """A store for ``database.url`` (or ``default_url`` when unset). Connects lazily."""
    url = parse_database_url(database.url or default_url)
    if url.engine == "mysql":
        from .mariadb import MariaDBStore

        return MariaDBStore(url, database)
    from .sqlite import SQLiteStore

    return SQLiteStore(url.path, database)
