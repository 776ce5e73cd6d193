"""The leader lease: one Redis key holding the leader's id, with a TTL its holder keeps renewing.

Why a Redis key and not MariaDB ``GET_LOCK``: everything the leader writes
(seq, documents, streams) goes to Redis through scripts that first check
this key, so a leader that lost its lease (paused, partitioned) cannot write
one more delta; a lock in another system could not fence those writes.
Contending for ``GET_LOCK`` would also make every follower send statements
to the database, and the followers must send none (docs/decisions.md).

``hold`` both takes a free lease and renews one we hold (one round trip);
``release`` gives it up at once on a graceful stop and says so on the
channel, so a follower takes over at once instead of after a whole TTL.
"""

from __future__ import annotations

import redis.asyncio as aioredis

_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], 'H')
  return 1
end
return 0
"""


class Lease:
    def __init__(self, redis: aioredis.Redis, key: str, holder: str, ttl: float, channel: str = "") -> None:
        self.key = key
        self.channel = channel  # where a release is announced (``feed``'s HANDOVER), so followers try at once
        self.holder = holder
        self.ttl_ms = max(1, round(ttl * 1000))
        self._redis = redis
        self._hold = redis.register_script(_HOLD)
        self._release = redis.register_script(_RELEASE)

    async def hold(self) -> bool:
        """Take the lease if it is free, renew it if it is ours; False while another instance holds it."""
        return bool(await self._hold(keys=[self.key], args=[self.holder, self.ttl_ms]))

    async def release(self) -> bool:
        """Give the lease up if it is ours (a graceful stop hands over at once)."""
        return bool(await self._release(keys=[self.key], args=[self.holder, self.channel]))

    async def current_holder(self) -> str | None:
        value = await self._redis.get(self.key)
        return None if value is None else value.decode() if isinstance(value, bytes) else value
