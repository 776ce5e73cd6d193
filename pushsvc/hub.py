"""Topics, their sequence numbers and history, and who is subscribed.

The hub is the broker's consumer and is synchronous on purpose: it never
awaits a client. A delta is encoded once and the same bytes go to every
subscriber's bounded outbox (``Session.offer``); snapshots are encoded at
most once per ``seq`` and only when a session's writer actually needs one.

A topic exists while it has subscribers; the hub tells the broker
(``watch``/``unwatch``), which is how the poller learns what to read. Until
the topic's first document arrives it is *pending*: its subscribers wait for
the snapshot. Each topic's recent deltas are kept for resume in a
:class:`~pushsvc.history.History`, bounded in bytes. The database status is a
retained control message: the hub keeps the latest one that is not ``ok``
and sends it to sessions as they register.

The hub also keeps the latest :class:`~pushsvc.broker.Tick` (when every
materialised document was last confirmed against the database, and when
that news arrived here) until the database is reported unavailable: REST
answers from the documents only while that confirmation is recent
(restcache.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import protocol
from .broker import Broker, Publication, Tick
from .history import History
from .protocol import DatabaseStatus, RequestId, with_request_id
from .wsframe import text_frame

PENDING: Any = object()


class Subscriber(Protocol):
    """What the hub needs from a session (see ``session.Session``)."""

    topics: set[str]

    def offer(self, topic: str, data: bytes, frame: bytes | None = None) -> None: ...

    def offer_snapshot(self, topic: str, request_id: RequestId | None) -> None: ...

    def send(self, data: bytes) -> None: ...


@dataclass(eq=False)
class Topic:
    name: str
    seq: int = 0
    document: Any = PENDING
    subscribers: set[Subscriber] = field(default_factory=set)
    # Subscribers waiting for the first document, with their request id and ``since``.
    waiting: list[tuple[Subscriber, RequestId | None, tuple[str, int] | None]] = field(default_factory=list)
    _snapshot: bytes | None = None

    @property
    def materialised(self) -> bool:
        return self.document is not PENDING


class Hub:
    def __init__(
        self,
        broker: Broker,
        history_size: int,
        history_bytes: int = 1 << 20,
        history_total_bytes: int = 16 << 20,
    ) -> None:
        self.broker = broker
        # The deltas kept for resume, bounded per topic (count and bytes) and overall (bytes).
        self.history = History(history_size, history_bytes, history_total_bytes)
        self.topics: dict[str, Topic] = {}
        self.sessions: set[Subscriber] = set()
        self.subscription_count = 0
        self._status: bytes | None = None  # the retained status frame, while the database is not ok
        # The latest completed read, and time.monotonic() when it arrived; None while the database is not ok.
        self.tick: Tick | None = None
        self.tick_received = 0.0
        self._next_tick: asyncio.Future[None] | None = None  # for next_tick(), made when first awaited

    @property
    def epoch(self) -> str:
        return self.broker.epoch

    # -- sessions -------------------------------------------------------------

    def register(self, session: Subscriber) -> None:
        """A welcomed session: from now on it gets control messages, starting with the retained status."""
        self.sessions.add(session)
        if self._status is not None:
            session.send(self._status)

    def drop_session(self, session: Subscriber) -> None:
        for name in list(session.topics):
            self.unsubscribe(session, name)
        self.sessions.discard(session)

    def subscribe(
        self, session: Subscriber, name: str, since: tuple[str, int] | None, request_id: RequestId | None
    ) -> None:
        """Add ``session`` to ``name`` and queue its first answer (snapshot or replay)."""
        topic = self.topics.get(name)
        created = topic is None
        if topic is None:
            topic = self.topics[name] = Topic(name=name)
        if name not in session.topics:
            session.topics.add(name)
            topic.subscribers.add(session)
            self.subscription_count += 1
        if not topic.materialised:
            topic.waiting.append((session, request_id, since))
            if created:
                self.broker.watch(name)  # may deliver the first document at once
            return
        self._answer(topic, session, since, request_id)

    def _answer(
        self, topic: Topic, session: Subscriber, since: tuple[str, int] | None, request_id: RequestId | None
    ) -> None:
        """A new subscriber's first answer: the missed deltas when the history has them all, else a snapshot."""
        replay = self._replay(topic.name, since)
        if replay:
            for data in replay:
                session.offer(topic.name, with_request_id(data, request_id))
        else:
            session.offer_snapshot(topic.name, request_id)

    def _replay(self, name: str, since: tuple[str, int] | None) -> list[bytes]:
        """The deltas after ``since`` when the history still holds all of them, else []."""
        if since is None or since[0] != self.epoch:
            return []
        return self.history.after(name, since[1]) or []

    def unsubscribe(self, session: Subscriber, name: str) -> bool:
        topic = self.topics.get(name)
        if topic is None or name not in session.topics:
            return False
        session.topics.discard(name)
        topic.subscribers.discard(session)
        topic.waiting = [entry for entry in topic.waiting if entry[0] is not session]
        self.subscription_count -= 1
        if not topic.subscribers:
            del self.topics[name]
            self.history.drop(name)
            self.broker.unwatch(name)
        return True

    def snapshot_message(self, name: str, request_id: RequestId | None = None) -> bytes | None:
        """The encoded snapshot of ``name`` at its current seq (cached until the next publication)."""
        topic = self.topics.get(name)
        if topic is None or not topic.materialised:
            return None
        if topic._snapshot is None:
            topic._snapshot = protocol.snapshot(name, self.epoch, topic.seq, topic.document)
        return with_request_id(topic._snapshot, request_id)

    # -- the broker's side ------------------------------------------------------

    def on_publication(self, publication: Publication) -> None:
        """A topic's first document (or a reset), or one delta to fan out."""
        topic = self.topics.get(publication.topic)
        if topic is None:
            return
        if publication.snapshot:
            self._materialise(topic, publication)
        elif topic.materialised:
            self._fan_out(topic, publication)

    def _materialise(self, topic: Topic, publication: Publication) -> None:
        """Waiting subscribers get their first answer (all subscribers get snapshots on a reset).

        A publication that brings history (a cluster broker's) lets a waiting ``since`` replay.
        """
        reset = topic.materialised
        topic.seq = publication.seq
        topic.document = publication.document
        self.history.drop(topic.name)
        for seq, data in publication.history:  # oldest first; the history's bounds keep the newest
            self.history.append(topic.name, seq, data)
        topic._snapshot = None
        waiting, topic.waiting = topic.waiting, []
        if reset:
            for session in topic.subscribers:
                session.offer_snapshot(topic.name, None)
            return
        for session, request_id, since in waiting:
            if topic.name in session.topics:
                self._answer(topic, session, since, request_id)

    def _fan_out(self, topic: Topic, publication: Publication) -> None:
        topic.seq = publication.seq
        topic.document = publication.document
        topic._snapshot = None
        data = publication.frame or protocol.delta(topic.name, self.epoch, topic.seq, publication.patch)
        self.history.append(topic.name, topic.seq, data)
        name, frame = topic.name, text_frame(data)  # the same frame bytes for every idle socket
        for session in topic.subscribers:
            session.offer(name, data, frame)

    def on_status(self, status: DatabaseStatus) -> None:
        """Tell every registered session; keep the frame for later ones unless the database is ok."""
        data = protocol.status(status)
        self._status = None if status.ok else data
        if not status.ok:
            self.tick = None  # nothing is confirmed until a read succeeds again
            self._wake_tick_waiters()
        self.broadcast(data)

    def on_tick(self, tick: Tick) -> None:
        """Every materialised document was compared with the database at ``tick.read_at``."""
        self.tick, self.tick_received = tick, time.monotonic()
        self._wake_tick_waiters()

    async def next_tick(self) -> None:
        """Return at the next tick, or when the database is reported unavailable (``tick`` is then None)."""
        if self._next_tick is None:
            self._next_tick = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._next_tick)

    def _wake_tick_waiters(self) -> None:
        waiters, self._next_tick = self._next_tick, None
        if waiters is not None and not waiters.done():
            waiters.set_result(None)

    def status_frame(self) -> bytes | None:
        """The retained ``status`` frame while the database is not ok, else None."""
        return self._status

    def broadcast(self, data: bytes, sessions: Iterable[Subscriber] | None = None) -> None:
        """Send one encoded control message to every registered session."""
        for session in list(self.sessions if sessions is None else sessions):
            session.send(data)
