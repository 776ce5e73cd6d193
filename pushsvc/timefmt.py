"""Timestamps as the seed doc shows them.

Row times are stored without a zone in the appliance's local time. They are
shown as RFC 3339 with that zone's offset, fractional seconds only when
non-zero, trailing zeros trimmed: ``2025-09-09T11:48:50.709+01:00``.
Error bodies and status frames use UTC with a ``Z`` suffix, second precision.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo

UTC = dt.UTC


def resolve_zone(name: str) -> dt.tzinfo:
    """The configured IANA zone, or the machine's local zone (with its DST rules) when empty."""
    if name:
        return zoneinfo.ZoneInfo(name)
    for candidate in _local_zone_names():
        try:
            return zoneinfo.ZoneInfo(candidate)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue
    return dt.datetime.now().astimezone().tzinfo or UTC


def _local_zone_names() -> list[str]:
    names = []
    if os.environ.get("TZ"):
        names.append(os.environ["TZ"].lstrip(":"))
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            names.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    try:
        with open("/etc/timezone", encoding="utf-8") as handle:
            names.append(handle.read().strip())
    except OSError:
        pass
    return [name for name in names if name]


def parse_db_time(value: object) -> dt.datetime | None:
    """A naive datetime from a driver value (datetime from MariaDB, text from SQLite)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        if not value or value.startswith("0000-00-00"):
            return None
        return dt.datetime.fromisoformat(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    raise TypeError(f"not a time value: {type(value).__name__}")


def format_local(value: object, zone: dt.tzinfo) -> str | None:
    """``2025-09-09T11:48:50.709+01:00`` for a naive local time, None for NULL."""
    moment = parse_db_time(value)
    if moment is None:
        return None
    if moment.tzinfo is None:
        offset = zone.utcoffset(moment)
    else:
        offset = moment.utcoffset()
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + _format_offset(offset)


def _format_offset(offset: dt.timedelta | None) -> str:
    total = int(offset.total_seconds()) if offset is not None else 0
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    return f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"


def utc_now_text() -> str:
    """``2025-09-09T12:15:30Z``: the seed's error-body timestamp."""
    return dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
