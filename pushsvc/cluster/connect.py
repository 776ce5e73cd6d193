"""A Redis client for ``broker.url`` whose every call is bounded in time.

The asyncio client never blocks the event loop; the timeouts make sure a
Redis that stops answering is noticed within about a second (and so is a
dead connection), instead of hanging a task that fan-out waits for.
"""

from __future__ import annotations

import redis.asyncio as aioredis

CONNECT_TIMEOUT = 1.0  # seconds to open a connection
COMMAND_TIMEOUT = 2.0  # seconds for a reply (none of our commands blocks server-side)


def open_redis(url: str, *, client_name: str = "pushsvc") -> aioredis.Redis:
    """A pooled client (bytes replies). The URL may carry a password and TLS (``rediss://``)."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=COMMAND_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=10,
        client_name=client_name,
        decode_responses=False,
        max_connections=8,
    )
