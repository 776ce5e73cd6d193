"""Writing rows the same way on both engines (the demo, the seed rows and tests write; the service only reads).

MariaDB takes ``datetime`` values as they are. The SQLite schema keeps times
as text in MariaDB's own format (``YYYY-MM-DD HH:MM:SS[.fff]``), so reads give
the same strings on either engine: ``to_db`` is that one switch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from .base import Writer, placeholders


def to_db(value: Any, engine: str) -> Any:
    """SQLite keeps times as text in MariaDB's format; MariaDB takes datetimes."""
    if engine == "sqlite" and isinstance(value, dt.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond // 1000:03d}"
        return text
    return value


def for_engine(row: Mapping[str, Any], engine: str) -> dict[str, Any]:
    """``row`` with every value passed through :func:`to_db`."""
    return {key: to_db(value, engine) for key, value in row.items()}


async def insert_row(writer: Writer, table: str, row: Mapping[str, Any]) -> int:
    """INSERT one row. ``table`` and the keys are code constants, never user input."""
    columns = ", ".join(row)
    marks = placeholders(row)
    return await writer.insert(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))
