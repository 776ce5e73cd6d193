"""The seam between the change source (the poller) and the hub: who publishes what, in which order.

The live path runs one way::

    store -> poller -> broker -> hub -> session -> socket

The poller publishes a topic's first document (``publish_snapshot``), then
merge patches (``publish_delta``), the database status (``publish_status``)
and, after each completed read, a :class:`Tick` (``publish_tick``): the
proof that every watched topic's document was compared with the database
at that time, which is what lets REST answer from memory (restcache.py).
The broker is the ordering authority: it assigns each publication its
``seq``, keeps the last one per topic (the poller's diff base, ``last``)
and delivers every publication to its consumer, the hub.
Interest flows back as data, never as calls into the poller: the hub
``watch``es and ``unwatch``es topics, the poller reads ``watched()`` each
tick, and the ``on_interest`` callback given to ``open`` asks the poller for
an early tick when a topic gains its first watcher.

``seq`` rules (docs/protocol.md): a topic's first document gets a ``seq``
above every ``seq`` handed out to a topic that was dropped before, so a stale
``since`` can never be mistaken for a position in a new history; each delta
is the previous ``seq`` plus one. A topic nobody watches is forgotten, and
publications for it are ignored.

Published documents are never changed afterwards: a later publication
builds new objects for what changed and may share the unchanged parts (a
VM's entry in ``vm-contexts``) with the document before it, so a consumer
may remember encodings by object identity.

:class:`LocalBroker` is the in-process implementation: dictionaries and
direct calls, nothing awaited, so fan-out stays synchronous. A cluster
implementation (Redis, issue 10) keeps the same interface: ``epoch`` and the
last publication of each topic live in Redis, the leader's ``publish_*``
append to a capped stream per topic, every instance's consumer task reads
the streams and calls its hub, and ``watch``/``unwatch`` maintain a
cluster-wide interest set that the leader's ``watched()`` mirrors. A tick
must reach every consumer after the publications of the same tick (on
the same stream, or carrying their positions), never before them.
"""

from __future__ import annotations

import abc
import collections
import zlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from .protocol import DatabaseStatus


@dataclass(frozen=True, slots=True)
class Publication:
    """One change of a topic, as the broker ordered it.

    ``snapshot`` publications carry the whole ``document`` (a first document,
    or a reset the consumer must answer with snapshots); deltas carry the
    merge ``patch`` from ``seq - 1`` and the ``document`` it yields.
    """

    topic: str
    seq: int
    document: Any
    patch: Any = None
    snapshot: bool = False
    # The delta frame when the broker already has it encoded (a cluster leader's, read from Redis), so
    # the consumer fans out those bytes instead of encoding the patch again.
    frame: bytes | None = None
    # With a snapshot: the topic's recent (seq, delta frame)s up to ``seq``, oldest first, so a consumer
    # that only now starts holding the topic can still answer a ``since`` with a replay.
    history: tuple[tuple[int, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Tick:
    """A completed read of every watched topic, published after that read's publications.

    ``read_at`` is the wall-clock time (``time.time()``) just before the
    read's database snapshot began: every write committed before it is in the
    documents the consumer now holds. ``contexts`` is the number of contexts
    the read found; the ``vm-contexts`` document lists them all unless two
    share a ``vm_name`` (it keeps one per name), which is how a consumer can
    tell that the REST list may be served from it.
    """

    read_at: float
    contexts: int
    order: int = 0
    """CRC-32 of the ``vm-contexts`` document's VM names in order (0 while nobody watches it): a
    document patched together elsewhere (a cluster follower appends new keys) can tell whether its
    order is still the database's."""


def names_order(entries: Mapping[str, Any]) -> int:
    """``Tick.order`` of a ``vm-contexts`` mapping: a CRC-32 of its names in order."""
    return zlib.crc32(orjson.dumps(list(entries)))


class Consumer(Protocol):
    """What the broker delivers to (the hub). Called synchronously; must never await a client."""

    def on_publication(self, publication: Publication) -> None: ...

    def on_status(self, status: DatabaseStatus) -> None: ...

    def on_tick(self, tick: Tick) -> None: ...


class Broker(abc.ABC):
    """Orders publications, remembers the last one per topic, and tracks interest."""

    epoch: str
    """The stream position's epoch: ``seq``s are comparable only within one epoch."""

    # -- lifecycle --------------------------------------------------------------

    @abc.abstractmethod
    async def open(self, consumer: Consumer, on_interest: Callable[[], None]) -> None:
        """Start delivering to ``consumer``; call ``on_interest`` when a topic gains its first watcher."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop delivering and release connections."""

    def describe(self) -> dict[str, Any]:
        """What /readyz shows about the broker."""
        return {"broker": "in-process"}

    @property
    def reads_database(self) -> bool:
        """Whether this process's change source reads the database (a cluster follower's does not)."""
        return True

    # -- interest (the hub's side) ----------------------------------------------

    @abc.abstractmethod
    def watch(self, topic: str) -> None:
        """One more watcher of ``topic``."""

    @abc.abstractmethod
    def unwatch(self, topic: str) -> None:
        """One watcher fewer; the last one leaving drops the topic and its last publication."""

    # -- publishing (the change source's side) ------------------------------------

    @abc.abstractmethod
    def watched(self) -> Collection[str]:
        """Every topic somebody watches: what the change source must read."""

    @abc.abstractmethod
    def last(self, topic: str) -> Publication | None:
        """The last publication of ``topic``; None until its first document is published."""

    @abc.abstractmethod
    def publish_snapshot(self, topic: str, document: Any) -> None:
        """Publish the whole document of a watched topic (its first, normally)."""

    @abc.abstractmethod
    def publish_delta(self, topic: str, patch: Any, document: Any) -> None:
        """Publish a merge patch taking the topic's last document to ``document``."""

    @abc.abstractmethod
    def publish_status(self, status: DatabaseStatus) -> None:
        """Publish the database status (retained: the consumer keeps the latest)."""

    @abc.abstractmethod
    def publish_tick(self, tick: Tick) -> None:
        """Publish that a read of every watched topic completed (after its publications; retained)."""


class DetachedConsumer:
    """The consumer before ``open`` (and after ``close``): publications go nowhere."""

    def on_publication(self, publication: Publication) -> None:
        pass

    def on_status(self, status: DatabaseStatus) -> None:
        pass

    def on_tick(self, tick: Tick) -> None:
        pass


class LocalBroker(Broker):
    """The in-process broker: one process, one hub, synchronous delivery."""

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        self._consumer: Consumer = DetachedConsumer()
        self._on_interest: Callable[[], None] = lambda: None
        self._watchers: collections.Counter[str] = collections.Counter()
        self._last: dict[str, Publication] = {}
        self._next_seq = 0

    async def open(self, consumer: Consumer, on_interest: Callable[[], None]) -> None:
        self._consumer, self._on_interest = consumer, on_interest

    async def close(self) -> None:
        self._consumer, self._on_interest = DetachedConsumer(), lambda: None

    def watch(self, topic: str) -> None:
        self._watchers[topic] += 1
        if self._watchers[topic] == 1:
            self._on_interest()

    def unwatch(self, topic: str) -> None:
        if self._watchers[topic] > 1:
            self._watchers[topic] -= 1
            return
        del self._watchers[topic]
        last = self._last.pop(topic, None)
        if last is not None:
            self._next_seq = max(self._next_seq, last.seq + 1)

    def watched(self) -> Collection[str]:
        return list(self._watchers)

    def last(self, topic: str) -> Publication | None:
        return self._last.get(topic)

    def publish_snapshot(self, topic: str, document: Any) -> None:
        if topic not in self._watchers:
            return
        previous = self._last.get(topic)
        seq = self._next_seq if previous is None else previous.seq + 1
        self._deliver(Publication(topic, seq, document, snapshot=True))

    def publish_delta(self, topic: str, patch: Any, document: Any) -> None:
        previous = self._last.get(topic)
        if previous is None:
            return  # not watched, or no first document yet: nobody holds a base to patch
        self._deliver(Publication(topic, previous.seq + 1, document, patch))

    def publish_status(self, status: DatabaseStatus) -> None:
        self._consumer.on_status(status)

    def publish_tick(self, tick: Tick) -> None:
        self._consumer.on_tick(tick)

    def _deliver(self, publication: Publication) -> None:
        self._last[publication.topic] = publication
        self._consumer.on_publication(publication)
