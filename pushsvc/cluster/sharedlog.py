"""The cluster's shared position: epoch, and per topic the document, its seq and the delta stream.

Readers are any instance; every write is the leader's and is one Lua script
that first checks the lease (the caller still holds it) and the epoch (Redis
did not lose its data meanwhile), so a deposed or stale leader cannot write,
and a topic's document, seq and stream entry change together or not at all.

Streams are trimmed exactly (``MAXLEN = history_size``, not ``~``): the
history holds the same number of deltas as an in-process hub's, so whether
a ``since`` replays does not depend on how Redis packed its nodes. Entry ids
are ``<seq>-0``, so a replay is one XRANGE from the client's seq.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from .layout import Layout

OK, NOT_LEADER, EPOCH_CHANGED, SEQ_CONFLICT = 1, -1, -2, -3

_FENCE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -2 end
"""

_EPOCH = """
local epoch = redis.call('GET', KEYS[1])
if epoch then return epoch end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""

# KEYS: leader, epoch, doc, log, seqfloor. ARGV: holder, epoch, seq, document, delta, maxlen, channel, topic.
_PUBLISH = f"""
{_FENCE}
local seq = tonumber(ARGV[3])
local current = redis.call('HGET', KEYS[3], 'seq')
if current == false or tonumber(current) ~= seq - 1 then return -3 end
redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[6], ARGV[3] .. '-0', 'd', ARGV[5])
redis.call('HSET', KEYS[3], 'seq', ARGV[3], 'doc', ARGV[4])
local floor = tonumber(redis.call('GET', KEYS[5]) or '0')
if seq >= floor then redis.call('SET', KEYS[5], string.format('%d', seq + 1)) end
redis.call('PUBLISH', ARGV[7], 'D ' .. ARGV[3] .. ' ' .. string.format('%d', #ARGV[8]) .. ' ' .. ARGV[8] .. ARGV[5])
return 1
"""

# KEYS: leader, epoch, doc, log, seqfloor. ARGV: holder, epoch, seq, document, channel, topic.
# The leader picks the seq (its mirror of seqfloor, so it can fan out before Redis answers); it must not be
# below seqfloor, which would let an old `since` match the new history.
_RESET = f"""
{_FENCE}
local seq = tonumber(ARGV[3])
if seq < tonumber(redis.call('GET', KEYS[5]) or '0') then return -3 end
redis.call('DEL', KEYS[4])
redis.call('HSET', KEYS[3], 'seq', ARGV[3], 'doc', ARGV[4])
redis.call('SET', KEYS[5], string.format('%d', seq + 1))
redis.call('PUBLISH', ARGV[5], 'R ' .. ARGV[3] .. ' ' .. string.format('%d', #ARGV[6]) .. ' ' .. ARGV[6])
return 1
"""

# KEYS: leader, epoch, interest, doc, log. ARGV: holder, epoch, topic. 0 = still watched, kept.
_DROP = f"""
{_FENCE}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = redis.call('ZSCORE', KEYS[3], ARGV[3])
if expiry and tonumber(expiry) > now then return 0 end
redis.call('DEL', KEYS[4], KEYS[5])
return 1
"""

# KEYS: leader, epoch, status. ARGV: holder, epoch, frame ('' = database ok), channel.
_STATUS = f"""
{_FENCE}
if ARGV[3] == '' then redis.call('DEL', KEYS[3]) else redis.call('SET', KEYS[3], ARGV[3]) end
redis.call('PUBLISH', ARGV[4], 'S ' .. ARGV[3])
return 1
"""

# KEYS: leader, epoch. ARGV: holder, epoch, tick (JSON), channel. Nothing is stored: a tick matters only
# until the next one, and a follower that missed it waits for that.
_TICK = f"""
{_FENCE}
redis.call('PUBLISH', ARGV[4], 'T ' .. ARGV[3])
return 1
"""


class Refused(Exception):
    """A leader's write was refused; ``code`` says why (NOT_LEADER, EPOCH_CHANGED, SEQ_CONFLICT)."""

    def __init__(self, code: int) -> None:
        super().__init__({NOT_LEADER: "lease lost", EPOCH_CHANGED: "epoch changed", SEQ_CONFLICT: "seq conflict"}[code])
        self.code = code


@dataclass(frozen=True, slots=True)
class Write:
    """One fenced leader write, ready to run alone or in a batch (``SharedLog.apply``)."""

    script: AsyncScript
    keys: list[str]
    args: list[Any]
    counts: bool = False  # the reply is a count (drop), not OK/refusal codes


@dataclass(frozen=True, slots=True)
class StoredTopic:
    seq: int
    document: bytes  # JSON


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def new_epoch() -> str:
    """A fresh epoch: creation time (hex seconds) and randomness, so it never repeats."""
    return f"{int(time.time()):x}-{secrets.token_hex(4)}"


class SharedLog:
    def __init__(self, redis: aioredis.Redis, layout: Layout, history_size: int) -> None:
        self.layout = layout
        self.history_size = history_size
        self._redis = redis
        self._epoch = redis.register_script(_EPOCH)
        self._publish = redis.register_script(_PUBLISH)
        self._reset = redis.register_script(_RESET)
        self._drop = redis.register_script(_DROP)
        self._status = redis.register_script(_STATUS)
        self._tick = redis.register_script(_TICK)

    @property
    def write_scripts(self) -> list[AsyncScript]:
        """The scripts of the leader's writes (loaded once by ``LeaderWrites`` when it connects)."""
        return [self._publish, self._reset, self._drop, self._status, self._tick]

    # -- any instance ---------------------------------------------------------

    async def join_epoch(self) -> str:
        """The cluster's epoch, created by whichever instance asks first (it survives their restarts)."""
        epoch = await self._epoch(keys=[self.layout.epoch], args=[new_epoch()])
        return bytes(epoch).decode()

    async def current_epoch(self) -> str | None:
        epoch = await self._redis.get(self.layout.epoch)
        return None if epoch is None else _text(epoch)

    async def load(self, topics: Iterable[str]) -> dict[str, StoredTopic]:
        """The stored document and seq of each topic that has them (one round trip)."""
        names = list(topics)
        if not names:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hmget(self.layout.doc(name), "seq", "doc")
            replies = await pipe.execute()
        return {
            name: StoredTopic(int(seq), document)
            for name, (seq, document) in zip(names, replies)
            if seq is not None and document is not None
        }

    async def read_topic(self, topic: str, count: int) -> tuple[StoredTopic | None, list[tuple[int, bytes]]]:
        """The stored document and seq of ``topic`` and its last ``count`` deltas, read atomically (MULTI)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hmget(self.layout.doc(topic), "seq", "doc")
            pipe.xrevrange(self.layout.log(topic), max="+", min="-", count=count)
            (seq, document), entries = await pipe.execute()
        history = [
            (int(bytes(entry_id).split(b"-", 1)[0]), bytes(fields[b"d"])) for entry_id, fields in reversed(entries)
        ]
        if seq is None or document is None:
            return None, []
        return StoredTopic(int(seq), bytes(document)), history

    async def replay(self, topic: str, after: int) -> list[tuple[int, bytes]] | None:
        """The stored deltas with seq > ``after``, or None when the stream no longer holds seq ``after + 1``.

        An empty list means nothing follows ``after`` in the stream.
        """
        entries: Any = await self._redis.xrange(self.layout.log(topic), min=f"{after + 1}-0", max="+")
        deltas = [(int(bytes(entry_id).split(b"-", 1)[0]), bytes(fields[b"d"])) for entry_id, fields in entries]
        if deltas and deltas[0][0] != after + 1:
            return None
        return deltas

    async def seq_floor(self) -> int:
        """One above every seq handed out in this epoch: where a fresh topic may start."""
        value = await self._redis.get(self.layout.seq_floor)
        return 0 if value is None else int(value)

    async def history(self, topic: str, count: int) -> list[tuple[int, bytes]]:
        """The last ``count`` stored deltas of ``topic``, oldest first."""
        entries: Any = await self._redis.xrevrange(self.layout.log(topic), max="+", min="-", count=count)
        return [(int(bytes(entry_id).split(b"-", 1)[0]), bytes(fields[b"d"])) for entry_id, fields in reversed(entries)]

    async def status(self) -> bytes | None:
        """The retained ``status`` frame (the database is unavailable), or None."""
        value: Any = await self._redis.get(self.layout.status)
        return None if value is None else bytes(value)

    # -- the leader (fenced on the lease and the epoch) -----------------------

    async def apply(self, writes: list[Write]) -> None:
        """Run writes in order in one round trip (a pipeline, not a transaction: each script is atomic).

        Raises :class:`Refused` for the first refused one; the ones before it took effect.
        """
        if not writes:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for write in writes:
                await write.script(keys=write.keys, args=write.args, client=pipe)
            results = await pipe.execute(raise_on_error=True)
        for write, result in zip(writes, results):
            if write.counts and result >= 0:
                continue
            if result != OK:
                raise Refused(int(result))

    def publish_write(self, holder: str, epoch: str, topic: str, seq: int, document: bytes, delta: bytes) -> Write:
        """Store ``document`` at ``seq`` (= stored seq + 1), append the delta frame, notify the channel."""
        layout = self.layout
        return Write(
            self._publish,
            [layout.leader, layout.epoch, layout.doc(topic), layout.log(topic), layout.seq_floor],
            [holder, epoch, seq, document, delta, self.history_size, layout.channel, topic],
        )

    def reset_write(self, holder: str, epoch: str, topic: str, seq: int, document: bytes) -> Write:
        """Start ``topic`` afresh at ``seq`` (at least ``seq_floor()``) with an empty stream."""
        layout = self.layout
        return Write(
            self._reset,
            [layout.leader, layout.epoch, layout.doc(topic), layout.log(topic), layout.seq_floor],
            [holder, epoch, seq, document, layout.channel, topic],
        )

    def drop_write(self, holder: str, epoch: str, topic: str) -> Write:
        """Forget a topic nobody watches (a no-op if someone registered interest meanwhile)."""
        layout = self.layout
        return Write(
            self._drop,
            [layout.leader, layout.epoch, layout.interest, layout.doc(topic), layout.log(topic)],
            [holder, epoch, topic],
            counts=True,
        )

    def status_write(self, holder: str, epoch: str, frame: bytes | None) -> Write:
        """Retain (or, with None, clear) the database status frame and tell every instance."""
        layout = self.layout
        return Write(
            self._status, [layout.leader, layout.epoch, layout.status], [holder, epoch, frame or b"", layout.channel]
        )

    def tick_write(self, holder: str, epoch: str, tick: bytes) -> Write:
        """Tell every instance that a read completed (after that read's writes, in the same queue)."""
        layout = self.layout
        return Write(self._tick, [layout.leader, layout.epoch], [holder, epoch, tick, layout.channel])

    async def publish(self, holder: str, epoch: str, topic: str, seq: int, document: bytes, delta: bytes) -> None:
        await self.apply([self.publish_write(holder, epoch, topic, seq, document, delta)])

    async def reset(self, holder: str, epoch: str, topic: str, seq: int, document: bytes) -> None:
        await self.apply([self.reset_write(holder, epoch, topic, seq, document)])

    async def drop(self, holder: str, epoch: str, topic: str) -> bool:
        """False: someone registered interest meanwhile, the topic stays."""
        write = self.drop_write(holder, epoch, topic)
        result = await write.script(keys=write.keys, args=write.args)
        if result < 0:
            raise Refused(int(result))
        return bool(result)

    async def set_status(self, holder: str, epoch: str, frame: bytes | None) -> None:
        await self.apply([self.status_write(holder, epoch, frame)])
