"""Which topics anyone in the cluster watches: one sorted set, topic -> expiry on Redis's clock.

Every instance refreshes the topics its own clients watch (``touch``) more
often than ``ttl``; the leader polls what is still unexpired (``live``). So a
topic nobody watches any more, and every topic of an instance that died,
drops out within ``ttl`` of its last refresh, and no clock but Redis's is
compared. ``ZADD GT`` only ever moves an expiry later, so instances never
shorten each other's interest.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

_NOW_MS = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)"

_TOUCH = f"""
{_NOW_MS}
local expiry = string.format('%d', now + tonumber(ARGV[1]))
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'GT', expiry, ARGV[i])
end
return #ARGV - 1
"""

_LIVE = f"""
{_NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""


class Interest:
    def __init__(self, redis: aioredis.Redis, key: str, ttl: float) -> None:
        self.key = key
        self.ttl = ttl
        self._touch = redis.register_script(_TOUCH)
        self._live = redis.register_script(_LIVE)

    async def touch(self, topics: Iterable[str]) -> None:
        """These topics are watched here: keep them for another ``ttl`` seconds (one round trip)."""
        names = list(topics)
        if names:
            await self._touch(keys=[self.key], args=[round(self.ttl * 1000), *names])

    async def live(self) -> set[str]:
        """Every topic some instance watches (expired ones are removed on the way)."""
        return {name.decode() for name in await self._live(keys=[self.key])}
