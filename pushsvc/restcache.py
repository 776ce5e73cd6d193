"""REST from memory: the seed's bodies served from the live documents while the poller vouches for them.

A REST request names a topic: ``vm-context/<name>`` for the detail,
``vm-contexts`` for the list. When that topic is *live* - materialised in
the hub, and confirmed by a completed poller read (``hub.tick``) that began
no more than ``poller.interval + rest.freshness_margin`` ago - the answer
comes from here: a dictionary lookup and, at most once per change of the
topic, one encoding. A topic that was live and is only late waits for the
poller's next read (:meth:`RestCache.wait_live`) rather than read around it.
Otherwise (``None``) the edge reads the database as before (identical reads
in flight shared: :meth:`RestCache.shared_read`) and calls
:meth:`RestCache.keep_live`: the topic is then watched for
``rest.live_ttl`` seconds, through the hub and so the broker, exactly like a
WebSocket subscriber's interest (one more subscriber, which drops nothing
and is never sent anything), and every request for it renews that lease.
When the requests stop, the lease runs out and the topic is dropped as a
subscriber's would be.

Bodies. The detail body is the topic's document, encoded as it is. The list
is built from the dashboard document (one entry per VM name, in the
database's order): each VM's list item is encoded once per change of that
VM, and a list body, for any ``status``/``limit``/``offset``, is those bytes
joined; the unfiltered body and the last few pages are kept whole until the
next change. When two contexts share a name the dashboard keeps only one,
and the list is read from the database instead (``Tick.contexts`` tells).

ETags. A live answer's ETag is the topic's stream position, ``"<epoch>:<seq>"``;
a filtered list appends its filter (``"<epoch>:<seq>;status=failed;limit=10"``),
as different filters give different bodies at one position. A client can
subscribe with ``since`` = that position and gets exactly the deltas after
its snapshot. A database read's ETag is that position too when the live
document holds the same bytes (:meth:`RestCache.position_of`), else the hash
the edge computes.

List variants (``LIST_VARIANTS``) are the shapes of a list item taken from a
dashboard entry; each has its own encoded items, views and ETag suffix.

This module knows nothing about HTTP: ``api.py`` turns answers into responses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Hashable
from typing import Any, TypeVar

import orjson

from .broker import names_order
from .documents import list_item, list_item_with_last_job
from .hub import Hub, Topic
from .protocol import DASHBOARD_TOPIC, RequestId, detail_topic, is_valid_topic

ListItem = Callable[[dict[str, Any]], dict[str, Any]]
T = TypeVar("T")

# The list item shapes, by variant: ``""`` is the seed's, ``"last_job"`` that of ``?include=last_job``
# (list_variant). A variant is a projection of a dashboard entry; its name goes into the ETag.
LIST_VARIANTS: dict[str, ListItem] = {
    "": list_item,
    "last_job": lambda entry: list_item_with_last_job(list_item(entry), entry["last_job"]),
}


def list_variant(include: Collection[str]) -> str:
    """The variant of a list request's ``include`` names (``LIST_VARIANTS``)."""
    return ",".join(sorted(include)) if include else ""


MAX_PAGES = 64  # filtered list bodies kept per variant until the next change


class Answer:
    """One REST body at one stream position, encoded when first needed and then kept.

    ``found`` is False for a detail topic whose VM does not exist (the edge's 404).
    """

    __slots__ = ("_body", "_build", "etag", "found")

    def __init__(self, etag: str, build: Callable[[], bytes] | None) -> None:
        self.etag = etag
        self.found = build is not None
        self._build = build
        self._body: bytes | None = None

    @property
    def body(self) -> bytes:
        if self._body is None:
            assert self._build is not None, "a missing VM has no body"
            self._body, self._build = self._build(), None
        return self._body


class _Interest:
    """The REST leases as one hub subscriber: it holds topics and ignores what is offered."""

    def __init__(self) -> None:
        self.topics: set[str] = set()

    def offer(self, topic: str, data: bytes, frame: bytes | None = None) -> None:
        pass

    def offer_snapshot(self, topic: str, request_id: RequestId | None) -> None:
        pass

    def send(self, data: bytes) -> None:
        pass


class _ListView:
    """The list at one position in one variant: encoded items, in order and by status."""

    def __init__(
        self, at: tuple[str, int], position: str, suffix: str, items: list[tuple[str, bytes]], order: int
    ) -> None:
        self.at = at  # (epoch, seq): compared on every request, cheaper than the position text
        self.position = position
        self.suffix = suffix
        self.order = order  # Tick.order of the document the items came from
        self.all = [data for _, data in items]
        self.by_status: dict[str, list[bytes]] = {}
        for status, data in items:
            self.by_status.setdefault(status, []).append(data)
        self.pages: dict[tuple[str | None, int | None, int], Answer] = {}

    def page(self, status: str | None, limit: int | None, offset: int) -> Answer:
        key = (status, limit, offset)
        answer = self.pages.get(key)
        if answer is None:
            items = self.all if status is None else self.by_status.get(status, [])
            end = None if limit is None else offset + limit
            etag = f'"{self.position}{filter_suffix(status, limit, offset)}{self.suffix}"'
            answer = Answer(etag, _joined(items, offset, end))
            if len(self.pages) < MAX_PAGES:
                self.pages[key] = answer
        return answer


def _joined(items: list[bytes], start: int, end: int | None) -> Callable[[], bytes]:
    """The seed's list body (``list_document`` as orjson writes it) from encoded items."""

    def build() -> bytes:
        return b'{"count":%d,"vm_contexts":[%b]}' % (len(items), b",".join(items[start:end]))

    return build


def filter_suffix(status: str | None, limit: int | None, offset: int) -> str:
    """What a filtered list adds to its position ETag (nothing for the whole list)."""
    parts = []
    if status is not None:
        parts.append(f";status={status}")
    if limit is not None:
        parts.append(f";limit={limit}")
    if offset:
        parts.append(f";offset={offset}")
    return "".join(parts)


class RestCache:
    """Live REST answers for the hub's topics, and the leases that keep REST's topics live."""

    def __init__(
        self,
        hub: Hub,
        *,
        interval: float,
        margin: float,
        ttl: float,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub = hub
        self.bound = interval + margin
        self.ttl = ttl
        self.enabled = ttl > 0
        self._clock, self._monotonic = clock, monotonic
        self._interest = _Interest()
        self._leases: dict[str, float] = {}  # topic -> monotonic deadline
        self._timer: asyncio.TimerHandle | None = None
        self._details: dict[str, Answer] = {}  # topic -> answer at the topic's position
        self._positions: dict[str, tuple[str, int]] = {}  # topic -> (epoch, seq) _details holds
        self._items: dict[str, dict[str, tuple[dict[str, Any], str, bytes]]] = {}  # variant -> name -> item
        self._lists: dict[str, _ListView] = {}  # variant -> view at the dashboard's position
        self._reads: dict[Hashable, tuple[float, asyncio.Future[Any]]] = {}  # key -> (started, read in flight)

    @property
    def live_topics(self) -> int:
        """Topics held by REST leases."""
        return len(self._leases)

    # -- answers ----------------------------------------------------------------

    def detail(self, vm_name: str) -> Answer | None:
        """The detail answer from memory, or None when the topic is not live (read the database)."""
        name = detail_topic(vm_name)
        topic = self._live(name)
        if topic is None:
            return None
        self.keep_live(name)
        return self._detail_answer(topic)

    def listing(self, status: str | None, limit: int | None, offset: int, variant: str = "") -> Answer | None:
        """The list answer from memory, or None when ``vm-contexts`` is not live or lacks a context."""
        topic = self._live(DASHBOARD_TOPIC)
        if topic is None:
            return None
        tick = self._hub.tick
        if tick is None or len(topic.document["vm_contexts"]) != tick.contexts:
            return None  # two contexts share a name: the dashboard shows one of them
        view = self._list_view(topic, variant)
        if view.order != tick.order:
            return None  # not the database's order (a cluster follower's patched copy, until resynchronised)
        self.keep_live(DASHBOARD_TOPIC)
        return view.page(status, limit, offset)

    async def wait_live(self, name: str) -> bool:
        """Wait for the poller's next read when ``name`` was live and is only late; True once live again.

        A topic whose confirmation is older than the bound while the database
        is not reported down is usually one tick away from live (a slow read,
        a busy machine). Waiting for that tick, at most ``interval + margin``,
        keeps every polling client off the database exactly when it is slow;
        a topic never materialised, or a database reported unavailable, is
        not waited for (False at once: read the database).
        """
        hub = self._hub
        topic = hub.topics.get(name)
        if not self.enabled or topic is None or not topic.materialised or self._live(name) is not None:
            return False
        try:
            async with asyncio.timeout(self.bound):
                while hub.tick is not None:
                    await hub.next_tick()
                    if self._live(name) is not None:
                        return True
        except TimeoutError:
            pass
        return False

    def position_of(self, body: bytes, vm_name: str | None = None, **list_query: Any) -> str | None:
        """The position ETag for a body read from the database, if the live document holds these bytes.

        ``vm_name`` for a detail; otherwise the list's ``status``, ``limit``,
        ``offset`` and ``variant``. Freshness does not matter here: the bytes
        are those of the document at that position, so the position is right.
        """
        if not self.enabled:
            return None
        name = DASHBOARD_TOPIC if vm_name is None else detail_topic(vm_name)
        topic = self._hub.topics.get(name)
        if topic is None or not topic.materialised:
            return None
        if vm_name is not None:
            answer = self._detail_answer(topic)
        else:
            variant = list_query.pop("variant", "")
            answer = self._list_view(topic, variant).page(**list_query)
        return answer.etag if answer.found and answer.body == body else None

    def _live(self, name: str) -> Topic | None:
        if not self.enabled:
            return None
        hub = self._hub
        topic = hub.topics.get(name)
        if topic is None or not topic.materialised:
            return None
        tick = hub.tick
        if tick is None:
            return None
        # The wall clock compares with the reader's stamp (another instance's, in a cluster); the
        # monotonic age since it arrived guards against this machine's clock stepping back.
        age = max(self._clock() - tick.read_at, self._monotonic() - hub.tick_received)
        return topic if age <= self.bound else None

    def _detail_answer(self, topic: Topic) -> Answer:
        at = (self._hub.epoch, topic.seq)
        answer = self._details.get(topic.name)
        if answer is None or self._positions.get(topic.name) != at:
            document = topic.document
            build = None if document is None else (lambda: orjson.dumps(document))
            answer = self._details[topic.name] = Answer(f'"{at[0]}:{at[1]}"', build)
            self._positions[topic.name] = at
        return answer

    def _list_view(self, topic: Topic, variant: str) -> _ListView:
        """The variant's view at the dashboard's position; items re-encoded only where an entry changed.

        Entries are compared by identity: a published document is never
        changed, and an entry that did not change is the same object in the
        next document (broker.py's contract).
        """
        at = (self._hub.epoch, topic.seq)
        view = self._lists.get(variant)
        if view is not None and view.at == at:
            return view
        project = LIST_VARIANTS[variant]
        old = self._items.get(variant, {})
        new: dict[str, tuple[dict[str, Any], str, bytes]] = {}
        items: list[tuple[str, bytes]] = []
        for name, entry in topic.document["vm_contexts"].items():
            cached = old.get(name)
            if cached is None or cached[0] is not entry:
                item = project(entry)
                cached = (entry, item["current_status"], orjson.dumps(item))
            new[name] = cached
            items.append((cached[1], cached[2]))
        self._items[variant] = new
        suffix = f";include={variant}" if variant else ""
        order = names_order(topic.document["vm_contexts"])
        view = self._lists[variant] = _ListView(at, f"{at[0]}:{at[1]}", suffix, items, order)
        return view

    # -- database reads -------------------------------------------------------------

    def shared_read(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """``read()``, or the same read already in flight for ``key`` if it began within the bound.

        When the poller falls behind (a slow database), every polling client
        would otherwise read the database at once, and make it slower still;
        requests for the same answer share one read instead. A shared read
        began at most ``interval + margin`` ago, so the answer keeps the
        freshness rule. A waiter that gives up (its own timeout) does not
        cancel the read for the others.
        """
        if not self.enabled:
            return read()  # answers from memory off: every request reads the database, as it always did
        now = self._monotonic()
        known = self._reads.get(key)
        if known is not None and not known[1].done() and now - known[0] <= self.bound:
            return asyncio.shield(known[1])
        task = asyncio.ensure_future(read())
        self._reads[key] = (now, task)

        def forget(done: asyncio.Future[Any]) -> None:
            if self._reads.get(key, (0.0, None))[1] is done:
                del self._reads[key]
            if not done.cancelled():
                done.exception()  # retrieved: a failure is reported to the waiters, not as "never retrieved"

        task.add_done_callback(forget)
        return asyncio.shield(task)

    # -- leases -------------------------------------------------------------------

    def keep_live(self, name: str) -> None:
        """Watch ``name`` for another ``rest.live_ttl`` seconds (a REST request asked for it)."""
        if not self.enabled:
            return
        deadline = self._monotonic() + self.ttl
        if name in self._leases:
            self._leases[name] = deadline
            return
        if not is_valid_topic(name):
            return  # a name no topic can have (over 255 characters): always read from the database
        self._leases[name] = deadline
        self._hub.subscribe(self._interest, name, None, None)  # may materialise it at once
        self._arm()

    def _arm(self) -> None:
        if self._timer is None and self._leases:
            delay = min(self._leases.values()) - self._monotonic()
            self._timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._expire)

    def _expire(self) -> None:
        """Drop the topics whose lease ran out; wake again for the next deadline."""
        self._timer = None
        now = self._monotonic()
        for name, deadline in list(self._leases.items()):
            if deadline <= now:
                self._release(name)
        self._arm()

    def _release(self, name: str) -> None:
        del self._leases[name]
        self._hub.unsubscribe(self._interest, name)
        self._details.pop(name, None)
        self._positions.pop(name, None)
        if name == DASHBOARD_TOPIC:
            self._items.clear()
            self._lists.clear()

    def close(self) -> None:
        """Cancel the expiry timer and release every lease (shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for _, read in self._reads.values():
            read.cancel()
        for name in list(self._leases):
            self._release(name)
