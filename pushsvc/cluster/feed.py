"""The cluster's one pub/sub channel: how every instance hears of new deltas at once.

Each instance keeps one subscription (one connection) to ``<ns>:feed``,
whatever its number of topics or sockets, and reads each delta from it once.
The channel is a notification path, not the record: a notice missed while the
subscription was down is found again in the topic's stream (``sharedlog``),
because every notice carries the topic's seq and a jump shows the gap.

Notices (bytes; topics are length-prefixed because a VM name may hold any
character, and the delta frame follows verbatim so it is never re-encoded):

- ``D <seq> <len> <topic><delta frame>``: the leader published this delta.
- ``R <seq> <len> <topic>``: the topic (re)starts at ``seq`` with the stored document.
- ``S <status frame>``: the retained database status changed (empty: database ok again).
- ``T [read_at, contexts, order]``: the leader's poller completed a read (a ``Tick``, JSON); it
  follows that read's ``D``/``R`` notices, so a follower holding them all may serve REST from memory.
- ``W <topic>``: an instance wants a topic now (the leader polls early).
- ``H``: the leader released its lease (a graceful stop): followers try to take it now.

Why pub/sub rather than XREAD BLOCK on every watched stream: one blocking
XREAD per instance must name all its topics' streams on every call and be
re-issued whenever the watched set changes, while one SUBSCRIBE serves any
number of topics and delivers without polling; the stream still serves
replay and repairs gaps (docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis

from ..tasks import raise_if_cancelling

DELTA, RESET, STATUS, WAKE, HANDOVER, TICK = b"D", b"R", b"S", b"W", b"H", b"T"
POLL_TIMEOUT = 1.0  # seconds one read of the subscription waits before it checks the connection


@dataclass(frozen=True, slots=True)
class Notice:
    kind: bytes  # DELTA, RESET, STATUS, TICK, WAKE or HANDOVER
    topic: str = ""
    seq: int = 0
    data: bytes = b""


def parse_notice(raw: bytes) -> Notice | None:
    """The notice in one channel message, or None when it is not one of ours (ignored)."""
    kind = raw[:1]
    try:
        if kind in (DELTA, RESET):
            _, seq, length, rest = raw.split(b" ", 3)
            size = int(length)
            if size > len(rest):
                return None
            topic = rest[:size].decode()
            return Notice(kind, topic, int(seq), rest[size:])
        if kind in (STATUS, TICK):
            return Notice(kind, data=raw[2:])
        if kind == WAKE:
            return Notice(WAKE, topic=raw[2:].decode())
        if raw == HANDOVER:
            return Notice(HANDOVER)
    except (ValueError, UnicodeDecodeError):
        return None
    return None


def wake_notice(topic: str) -> bytes:
    return WAKE + b" " + topic.encode()


class Feed:
    """One subscription to the channel; ``notices()`` yields until the connection fails (then raises)."""

    def __init__(self, redis: aioredis.Redis, channel: str) -> None:
        self.channel = channel
        self._redis = redis
        self._pubsub: aioredis.client.PubSub | None = None

    async def open(self) -> None:
        """Subscribe (returns once Redis confirmed, so nothing published after this is missed)."""
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel)

    async def notices(self) -> AsyncIterator[Notice]:
        assert self._pubsub is not None, "open() first"
        while True:
            raise_if_cancelling()  # redis-py can swallow a cancellation (pushsvc/tasks.py)
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_TIMEOUT)
            if message is None or message.get("type") != "message":
                continue
            notice = parse_notice(message["data"])
            if notice is not None:
                yield notice

    async def wake(self, topic: str) -> None:
        """Ask the leader to read ``topic`` now (an instance got its first subscriber)."""
        await self._redis.publish(self.channel, wake_notice(topic))

    async def close(self) -> None:
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            try:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except Exception:  # closing a connection that already failed
                pass
