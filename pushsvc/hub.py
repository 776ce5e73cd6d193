"""Topics, their sequence numbers and history, and who is subscribed.

The hub is synchronous on purpose: it never awaits a client. Publishing
encodes a delta once and hands the same bytes to every subscriber's bounded
outbox (``Session.offer``); snapshots are encoded at most once per ``seq``
and only when a session's writer actually needs one.

A topic exists while it has subscribers. Until the poller has read its
document for the first time it is *pending*: subscribers wait for the
snapshot, and ``wake`` asks the poller for an early tick.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import protocol
from .protocol import with_request_id

PENDING: Any = object()


class Subscriber(Protocol):
    """What the hub needs from a session (see ``session.Session``)."""

    topics: set[str]

    def offer(self, topic: str, data: bytes) -> None: ...

    def offer_snapshot(self, topic: str, request_id: Any) -> None: ...

    def send(self, data: bytes) -> None: ...


@dataclass(eq=False)
class Topic:
    name: str
    seq: int
    base_seq: int
    document: Any = PENDING
    history: collections.deque = field(default_factory=collections.deque)
    subscribers: set = field(default_factory=set)
    waiting: list = field(default_factory=list)
    _snapshot: bytes | None = None

    @property
    def materialised(self) -> bool:
        return self.document is not PENDING


class Hub:
    def __init__(self, epoch: str, history_size: int) -> None:
        self.epoch = epoch
        self.history_size = history_size
        self.topics: dict[str, Topic] = {}
        self.sessions: set[Subscriber] = set()
        self.subscription_count = 0
        # Called when a topic starts waiting for its first document (the poller's wake).
        self.wake: Callable[[], None] = lambda: None
        self._next_seq = 0

    # -- sessions -------------------------------------------------------------

    def register(self, session: Subscriber) -> None:
        self.sessions.add(session)

    def drop_session(self, session: Subscriber) -> None:
        for name in list(session.topics):
            self.unsubscribe(session, name)
        self.sessions.discard(session)

    def subscribe(self, session: Subscriber, name: str, since: tuple[str, int] | None, request_id: Any) -> None:
        """Add ``session`` to ``name`` and queue its first answer (snapshot or replay)."""
        topic = self.topics.get(name)
        if topic is None:
            topic = self.topics[name] = Topic(name=name, seq=self._next_seq, base_seq=self._next_seq)
        if name not in session.topics:
            session.topics.add(name)
            topic.subscribers.add(session)
            self.subscription_count += 1
        if not topic.materialised:
            topic.waiting.append((session, request_id))
            self.wake()
            return
        replay = self._replay(topic, since)
        if replay:
            for data in replay:
                session.offer(name, with_request_id(data, request_id))
        else:
            session.offer_snapshot(name, request_id)

    def _replay(self, topic: Topic, since: tuple[str, int] | None) -> list[bytes]:
        """The deltas after ``since`` when the history still holds all of them, else []."""
        if since is None or since[0] != self.epoch:
            return []
        after = since[1]
        if not topic.base_seq <= after < topic.seq:
            return []
        if not topic.history or topic.history[0][0] > after + 1:
            return []
        return [data for seq, data in topic.history if seq > after]

    def unsubscribe(self, session: Subscriber, name: str) -> bool:
        topic = self.topics.get(name)
        if topic is None or name not in session.topics:
            return False
        session.topics.discard(name)
        topic.subscribers.discard(session)
        topic.waiting = [(s, rid) for s, rid in topic.waiting if s is not session]
        self.subscription_count -= 1
        if not topic.subscribers:
            # Later materialisations start above every seq handed out, so an old
            # `since` can never be mistaken for a position in the new history.
            self._next_seq = max(self._next_seq, topic.seq + 1)
            del self.topics[name]
        return True

    # -- poller side ----------------------------------------------------------

    def watched(self) -> list[str]:
        """Topics someone is subscribed to (pending ones included)."""
        return list(self.topics)

    def document(self, name: str) -> Any:
        """The last published document of a materialised topic (PENDING otherwise)."""
        topic = self.topics.get(name)
        return PENDING if topic is None else topic.document

    def materialise(self, name: str, document: Any) -> None:
        """First document of a pending topic: its waiting subscribers get snapshots."""
        topic = self.topics.get(name)
        if topic is None:
            return
        topic.document = document
        topic._snapshot = None
        waiting, topic.waiting = topic.waiting, []
        for session, request_id in waiting:
            if name in session.topics:
                session.offer_snapshot(name, request_id)

    def publish(self, name: str, patch: Any, document: Any) -> int:
        """Record one change of ``name`` and fan the delta out. Returns the receivers."""
        topic = self.topics.get(name)
        if topic is None or not topic.materialised:
            return 0
        topic.seq += 1
        topic.document = document
        topic._snapshot = None
        data = protocol.delta(name, self.epoch, topic.seq, patch)
        topic.history.append((topic.seq, data))
        if len(topic.history) > self.history_size:
            topic.history.popleft()
        for session in topic.subscribers:
            session.offer(name, data)
        return len(topic.subscribers)

    def snapshot_message(self, name: str, request_id: Any = None) -> bytes | None:
        """The encoded snapshot of ``name`` at its current seq (cached until the next publish)."""
        topic = self.topics.get(name)
        if topic is None or not topic.materialised:
            return None
        if topic._snapshot is None:
            topic._snapshot = protocol.snapshot(name, self.epoch, topic.seq, topic.document)
        return with_request_id(topic._snapshot, request_id)

    def broadcast(self, data: bytes, sessions: Iterable[Subscriber] | None = None) -> None:
        """Send one encoded control message to every registered session."""
        for session in list(self.sessions if sessions is None else sessions):
            session.send(data)
