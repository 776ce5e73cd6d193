"""The Redis broker: N instances, one leader polling the database, one stream position for all.

Implements :class:`pushsvc.broker.Broker`, so the poller and the hub do not
know whether they run alone or in a cluster.

Roles, all decided here and all reversible without a restart:

- **leader** (holds the lease): its poller reads every topic anyone in the
  cluster watches (``watched()``). Each publication is first put on the wire
  to Redis (``LeaderWrites``: document, seq and delta frame in one fenced
  script that also notifies the channel; the reply is read later, in order)
  and then fanned out to its own sockets, so followers start their fan-out
  while the leader does its own. A refused write (lease or epoch lost) makes
  it a follower again, its topics resynchronised from Redis.
- **follower**: ``watched()`` is empty, so its poller sends no statements.
  One subscription to the channel delivers every delta once; the leader's
  frame is applied to the topic's document and fanned out to the local
  sockets. A seq that jumps (a notice missed) or a topic restarted by the
  leader is repaired from the stream, or with a snapshot from the stored
  document when the stream no longer reaches back.
- **degraded** (Redis unreachable): the instance becomes its own in-process
  broker under a new local epoch, so its clients get snapshots and then live
  deltas from its own poller. It keeps trying Redis and rejoins the cluster
  epoch as a follower when Redis answers again.

Every Redis call is awaited on the event loop with bounded timeouts
(``connect``); nothing on the fan-out path waits for Redis (a leader write is
a synchronous ``transport.write``). Each transition
is logged once and shown in ``/metrics`` and ``/readyz``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable, Collection, Coroutine
from typing import Any

import orjson
import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from .. import protocol
from ..broker import Broker, Consumer, DetachedConsumer, Publication, Tick
from ..config import BrokerConfig, redact_url
from ..metrics import Metrics
from ..patch import merge_patch
from ..protocol import DatabaseStatus
from ..tasks import cancel_and_wait, raise_if_cancelling
from .connect import open_redis
from .feed import DELTA, HANDOVER, RESET, STATUS, TICK, WAKE, Feed, Notice
from .interest import Interest
from .layout import Layout
from .leaderwrites import LeaderWrites
from .lease import Lease
from .sharedlog import EPOCH_CHANGED, Refused, SharedLog, StoredTopic, Write, new_epoch

log = logging.getLogger(__name__)

REDIS_ERRORS = (RedisError, OSError, TimeoutError)
RETRY_DELAY = 1.0  # seconds between attempts to reach Redis while degraded
MAX_PENDING_WRITES = 10_000  # a leader this far behind on Redis is cut off (degraded) rather than grow without bound
CLOSE_FLUSH_TIMEOUT = 1.0  # seconds a stopping leader waits for its writes' replies before releasing the lease

IN_PROCESS, READY, DEGRADED = "in-process", "ready", "degraded"
LEADER, FOLLOWER = "leader", "follower"


class _ClusterMetrics:
    def __init__(self, metrics: Metrics) -> None:
        registry = metrics.registry
        self.ready = Gauge("pushsvc_broker_ready", "1 while in the Redis cluster, 0 while degraded", registry=registry)
        self.leader = Gauge("pushsvc_broker_leader", "1 while this instance holds the leader lease", registry=registry)
        self.transitions = Counter("pushsvc_broker_transitions", "Changes of cluster state", ["to"], registry=registry)
        self.redis_errors = Counter("pushsvc_broker_redis_errors", "Redis failures seen", registry=registry)
        self.repairs = Counter(
            "pushsvc_broker_repairs", "Topics resynchronised from Redis (gap, restart or failover)", registry=registry
        )
        self.queued_writes = Gauge(
            "pushsvc_broker_queued_writes", "Leader writes sent to Redis and not answered yet", registry=registry
        )


class RedisBroker(Broker):
    def __init__(self, config: BrokerConfig, *, history_size: int, interval: float, metrics: Metrics) -> None:
        self.url = config.url
        self.layout = Layout(config.namespace)
        self.history_size = history_size
        self.lease_ttl = config.lease_ttl
        # How often an instance refreshes its interest and tries (or renews) the lease.
        self.beat = min(interval, config.lease_ttl / 3)
        self.interest_ttl = max(config.lease_ttl, 3 * self.beat)
        self.instance = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.epoch = new_epoch()  # local until the cluster's is joined
        self.state = DEGRADED
        self.role: str | None = None
        self._metrics = _ClusterMetrics(metrics)
        self._consumer: Consumer = DetachedConsumer()
        self._on_interest: Callable[[], None] = lambda: None
        self._watchers: collections.Counter[str] = collections.Counter()
        self._last: dict[str, Publication] = {}
        self._history: dict[str, collections.deque[tuple[int, bytes]]] = {}
        self._next_seq = 0
        self._status: DatabaseStatus | None = None  # the last status delivered to the consumer
        # Leader: the cluster's watched topics as of the last refresh, plus topics woken since.
        self._cluster_topics: set[str] = set()
        # Follower: topics being resynchronised -> the highest seq noticed meanwhile.
        self._syncing: dict[str, int] = {}
        self._held_tick: Tick | None = None  # follower: the latest tick heard while a topic was resynchronised
        self._redis: aioredis.Redis | None = None
        self._log: SharedLog | None = None
        self._lease: Lease | None = None
        self._interest: Interest | None = None
        self._feed: Feed | None = None
        self._writes: LeaderWrites | None = None  # while leader
        self._metrics.queued_writes.set_function(lambda: 0 if self._writes is None else self._writes.pending)
        self._session_tasks: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[None] | None = None
        self._beat_now = asyncio.Event()
        self._closing = False
        self._joined_before = False

    # -- lifecycle ------------------------------------------------------------

    async def open(self, consumer: Consumer, on_interest: Callable[[], None]) -> None:
        """Start; one attempt to join the cluster is awaited (bounded), later ones run in the background."""
        self._consumer, self._on_interest = consumer, on_interest
        try:
            await self._join()
        except REDIS_ERRORS as exc:
            self._metrics.redis_errors.inc()
            log.warning(
                "Redis at %s unavailable (%s): serving this instance's clients on its own under a local epoch",
                redact_url(self.url),
                _describe(exc),
            )
            self._metrics.transitions.labels(DEGRADED).inc()
        self._main = asyncio.create_task(self._run(), name="cluster")

    async def close(self) -> None:
        """Stop; a leader first writes what it queued (briefly), then releases the lease at once."""
        self._closing = True
        if self._main is not None:
            await cancel_and_wait(self._main)
        if self.state == READY and self.role == LEADER and self._lease is not None:
            if self._writes is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLOSE_FLUSH_TIMEOUT):
                        await self._writes.flush()
            try:
                async with asyncio.timeout(CLOSE_FLUSH_TIMEOUT):
                    await self._lease.release()
                log.info("leader lease released (stopping): another instance takes over now")
            except REDIS_ERRORS:
                pass
        await self._disconnect()
        self._consumer, self._on_interest = DetachedConsumer(), lambda: None

    def describe(self) -> dict[str, Any]:
        """For /readyz: the cluster state and this instance's role."""
        return {"broker": self.state, "role": self.role if self.state == READY else "local", "epoch": self.epoch}

    @property
    def reads_database(self) -> bool:
        """Whether this instance's poller reads the database now (followers never do)."""
        return not (self.state == READY and self.role == FOLLOWER)

    # -- interest (the hub's side) --------------------------------------------

    def watch(self, topic: str) -> None:
        self._watchers[topic] += 1
        if self._watchers[topic] > 1:
            return
        if self.state != READY:
            self._on_interest()
        elif self.role == LEADER:
            last = self._last.get(topic)
            if last is not None:
                # Polled for another instance already: the current document (and its history) at once.
                self._consumer.on_publication(self._as_snapshot(last))
            else:
                self._cluster_topics.add(topic)
                self._on_interest()
            self._spawn(self._touch([topic]))
        else:
            self._spawn(self._sync(topic))

    def unwatch(self, topic: str) -> None:
        if self._watchers[topic] > 1:
            self._watchers[topic] -= 1
            return
        del self._watchers[topic]
        if self.state == READY and self.role == LEADER:
            return  # still polled while other instances watch it; the next refresh decides
        self._forget(topic)

    # -- publishing (the poller's side) ---------------------------------------

    def watched(self) -> Collection[str]:
        if self.state != READY:
            return list(self._watchers)
        if self.role == LEADER:
            return list(self._cluster_topics | self._watchers.keys())
        return ()

    def last(self, topic: str) -> Publication | None:
        return self._last.get(topic)

    def publish_snapshot(self, topic: str, document: Any) -> None:
        if self.state == READY and self.role == FOLLOWER:
            return
        if topic not in self._watchers and topic not in self._cluster_topics:
            return
        seq = self._next_seq
        self._next_seq = seq + 1
        if self.state == READY:
            self._queue(self._shared().reset_write(self.instance, self.epoch, topic, seq, orjson.dumps(document)))
        self._deliver(Publication(topic, seq, document, snapshot=True))

    def publish_delta(self, topic: str, patch: Any, document: Any) -> None:
        if self.state == READY and self.role == FOLLOWER:
            return
        previous = self._last.get(topic)
        if previous is None:
            return
        seq = previous.seq + 1
        self._next_seq = max(self._next_seq, seq + 1)
        frame = protocol.delta(topic, self.epoch, seq, patch)
        if self.state == READY:  # on the wire first: followers fan out while we do
            encoded = orjson.dumps(document)
            self._queue(self._shared().publish_write(self.instance, self.epoch, topic, seq, encoded, frame))
        self._deliver(Publication(topic, seq, document, patch, frame=frame))

    def publish_status(self, status: DatabaseStatus) -> None:
        if self.state == READY and self.role == FOLLOWER:
            return
        if self.state == READY:
            frame = None if status.ok else protocol.status(status)
            self._queue(self._shared().status_write(self.instance, self.epoch, frame))
        self._deliver_status(status)

    def publish_tick(self, tick: Tick) -> None:
        if self.state == READY and self.role == FOLLOWER:
            return
        if self.state == READY:
            payload = orjson.dumps([tick.read_at, tick.contexts, tick.order])
            self._queue(self._shared().tick_write(self.instance, self.epoch, payload))
        self._consumer.on_tick(tick)

    # -- delivery to the hub --------------------------------------------------

    def _deliver(self, publication: Publication) -> None:
        topic = publication.topic
        self._last[topic] = publication
        history = self._history.get(topic)
        if publication.snapshot or history is None:
            history = self._history[topic] = collections.deque(publication.history, maxlen=self.history_size)
        if not publication.snapshot:
            frame = publication.frame or protocol.delta(topic, self.epoch, publication.seq, publication.patch)
            history.append((publication.seq, frame))
        self._consumer.on_publication(publication)

    def _as_snapshot(self, last: Publication) -> Publication:
        history = tuple(self._history.get(last.topic, ()))
        return Publication(last.topic, last.seq, last.document, snapshot=True, history=history)

    def _deliver_status(self, status: DatabaseStatus) -> None:
        if self._status == status:
            return
        self._status = status
        self._consumer.on_status(status)

    def _forget(self, topic: str) -> None:
        last = self._last.pop(topic, None)
        self._history.pop(topic, None)
        if last is not None:
            self._next_seq = max(self._next_seq, last.seq + 1)

    # -- the background loop --------------------------------------------------

    async def _run(self) -> None:
        while True:
            # redis-py can swallow a cancellation (redis/redis-py#2028, #2551); pushsvc/tasks.py.
            raise_if_cancelling()
            if self.state != READY:
                await asyncio.sleep(RETRY_DELAY)
                try:
                    await self._join()
                except REDIS_ERRORS as exc:
                    self._metrics.redis_errors.inc()
                    log.debug("Redis still unavailable: %s", _describe(exc))
                continue
            try:
                await self._heartbeat()
            except REDIS_ERRORS as exc:
                await self._fall_back(exc)
                continue
            raise_if_cancelling()  # before the wait: a timeout would take a lost cancellation for its own
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.beat):
                    await self._beat_now.wait()
            self._beat_now.clear()

    async def _join(self) -> None:
        """Connect, take the cluster epoch, subscribe, and follow; then resynchronise every local topic."""
        redis = open_redis(self.url, client_name=f"pushsvc:{self.instance}")
        try:
            shared = SharedLog(redis, self.layout, self.history_size)
            epoch = await shared.join_epoch()
            feed = Feed(redis, self.layout.channel)
            await feed.open()
            status = await shared.status()
        except BaseException:
            await redis.aclose()
            raise
        self._redis, self._log, self._feed = redis, shared, feed
        self._lease = Lease(redis, self.layout.leader, self.instance, self.lease_ttl, channel=self.layout.channel)
        self._interest = Interest(redis, self.layout.interest, self.interest_ttl)
        self.epoch, self.state, self.role = epoch, READY, FOLLOWER
        self._metrics.ready.set(1)
        self._metrics.leader.set(0)
        self._metrics.transitions.labels(READY).inc()
        (log.warning if self._joined_before else log.info)(
            "joined the cluster at %s (namespace %s, epoch %s) as a follower",
            redact_url(self.url),
            self.layout.namespace,
            epoch,
        )
        self._joined_before = True
        self._last.clear()
        self._history.clear()
        self._cluster_topics.clear()
        self._held_tick = None
        self._spawn(self._follow(feed))
        if status is not None:
            self._deliver_status(_parse_status(status))
        elif self._status is not None and not self._status.ok:
            self._deliver_status(DatabaseStatus(protocol.DATABASE_OK, _now()))
        await self._touch(list(self._watchers))
        for topic in list(self._watchers):
            self._spawn(self._sync(topic))

    async def _heartbeat(self) -> None:
        """Refresh interest; take, keep or lose the lease; as leader, refresh the cluster's watched set."""
        assert self._lease is not None and self._interest is not None
        await self._touch(list(self._watchers))
        if await self._shared().current_epoch() != self.epoch:
            # Redis lost its data (restarted without persistence, flushed): rejoin under its new epoch.
            raise ConnectionError("the cluster epoch changed (Redis lost its data)")
        held = await self._lease.hold()
        if held and self.role != LEADER:
            await self._take_over()
        elif not held and self.role == LEADER:
            log.warning("leader lease lost to another instance: following again")
            await self._step_down(resync=True)
        if self.role == LEADER:
            await self._refresh_cluster_topics()

    async def _touch(self, topics: list[str]) -> None:
        if self._interest is not None and topics:
            await self._interest.touch(topics)

    async def _take_over(self) -> None:
        """Become the leader: rebuild the last published state from Redis, then let the poller diff against it."""
        assert self._interest is not None
        shared = self._shared()
        live = await self._interest.live() | self._watchers.keys()
        floor = await shared.seq_floor()
        stored = {}
        for topic in live:
            state, history = await shared.read_topic(topic, self.history_size)
            if state is not None:
                stored[topic] = (state, history)
        self._next_seq = max([floor, self._next_seq] + [state.seq + 1 for state, _ in stored.values()])
        await self._open_writes()
        for topic, (state, history) in stored.items():
            self._catch_up(topic, state, history)
        self._cluster_topics = set(live)
        self.role = LEADER
        self._metrics.leader.set(1)
        self._metrics.transitions.labels(LEADER).inc()
        log.info("took the leader lease: polling the database for %d watched topics", len(live))
        self._on_interest()

    async def _step_down(self, *, resync: bool) -> None:
        self.role = FOLLOWER
        self._metrics.leader.set(0)
        self._metrics.transitions.labels(FOLLOWER).inc()
        self._cluster_topics.clear()
        await self._close_writes()
        for topic in list(self._last):
            if topic not in self._watchers:
                self._forget(topic)
        if resync:
            # What we fanned out after our last accepted write may differ from the cluster's: snapshots.
            for topic in list(self._watchers):
                self._spawn(self._sync(topic, force=True))

    async def _refresh_cluster_topics(self) -> None:
        """The leader polls what anyone watches; a topic nobody watches any more is dropped."""
        assert self._interest is not None
        live = await self._interest.live()
        self._cluster_topics = live
        for topic in list(self._last):
            if topic not in live and topic not in self._watchers:
                self._forget(topic)
                self._queue_drop(topic)

    def _queue_drop(self, topic: str) -> None:
        self._queue(self._shared().drop_write(self.instance, self.epoch, topic))

    async def _fall_back(self, exc: BaseException) -> None:
        """Redis is gone: serve our own clients from our own poller under a new local epoch."""
        self._metrics.redis_errors.inc()
        if self.state != READY:
            return
        log.warning(
            "Redis at %s unavailable (%s): serving this instance's clients on its own under a local epoch",
            redact_url(self.url),
            _describe(exc),
        )
        self.state, self.role = DEGRADED, None
        self._metrics.ready.set(0)
        self._metrics.leader.set(0)
        self._metrics.transitions.labels(DEGRADED).inc()
        await self._disconnect()
        self.epoch = new_epoch()
        self._next_seq = 0
        self._last.clear()
        self._history.clear()
        self._cluster_topics.clear()
        if self._status is not None and not self._status.ok:
            # The leader's view; our own poller reports the database from now on.
            self._deliver_status(DatabaseStatus(protocol.DATABASE_OK, _now()))
        self._on_interest()  # the poller reads every local topic now: snapshots in the new epoch

    async def _disconnect(self) -> None:
        tasks, self._session_tasks = self._session_tasks, set()
        await asyncio.gather(*(cancel_and_wait(task) for task in tasks))
        await self._close_writes()
        feed, redis = self._feed, self._redis
        self._feed = self._redis = self._log = self._lease = self._interest = None
        if feed is not None:
            await feed.close()
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.aclose()

    # -- leader writes ----------------------------------------------------------

    async def _open_writes(self) -> None:
        writes = LeaderWrites(
            self._redis_client(),
            self._shared().write_scripts,
            on_refused=self._on_refused,
            on_failed=self._spawn_fall_back,
            limit=MAX_PENDING_WRITES,
        )
        await writes.open()
        await self._close_writes()
        self._writes = writes

    async def _close_writes(self) -> None:
        writes, self._writes = self._writes, None
        if writes is not None:
            await writes.close()

    def _queue(self, write: Write) -> None:
        """Send a leader write now (its reply is read later); a failure to send falls back."""
        if self._writes is None:
            self._spawn_fall_back(ConnectionError("no leader connection to Redis"))
            return
        try:
            self._writes.send(write)
        except REDIS_ERRORS as exc:
            self._spawn_fall_back(exc)
            return

    def _on_refused(self, exc: Refused) -> None:
        """A leader write was refused: its reading stopped; follow again (or rejoin, when the epoch changed)."""
        if exc.code == EPOCH_CHANGED:
            self._spawn_fall_back(ConnectionError("the cluster epoch changed (Redis lost its data)"))
        elif self.role == LEADER:
            self._spawn(self._follow_after_refusal(exc))

    async def _follow_after_refusal(self, exc: Refused) -> None:
        if self.role == LEADER:
            log.warning("a leader write was refused (%s): following again", exc)
            await self._step_down(resync=True)
            self._beat_now.set()

    def _spawn_fall_back(self, exc: BaseException) -> None:
        # Not awaited by the failing task itself: falling back cancels that task.
        if not self._closing:
            asyncio.get_running_loop().create_task(self._fall_back(exc))

    # -- following ------------------------------------------------------------

    async def _follow(self, feed: Feed) -> None:
        try:
            async for notice in feed.notices():
                self._on_notice(notice)
        except REDIS_ERRORS as exc:
            self._spawn_fall_back(exc)

    def _on_notice(self, notice: Notice) -> None:
        kind, topic = notice.kind, notice.topic
        if kind == DELTA:
            if self.role == FOLLOWER and topic in self._watchers:
                self._on_delta(notice)
        elif kind == RESET:
            if self.role == FOLLOWER and topic in self._watchers:
                last = self._last.get(topic)
                if last is None or last.seq != notice.seq:
                    self._need_sync(topic, notice.seq)
        elif kind == STATUS:
            if self.role == FOLLOWER:
                self._deliver_status(_parse_status(notice.data))
        elif kind == TICK:
            # The leader's read confirms this instance's documents only when they are all caught up
            # with it: while a topic is being resynchronised, the tick waits until none is.
            if self.role == FOLLOWER:
                tick = _parse_tick(notice.data)
                if tick is None:
                    pass
                elif self._syncing:
                    self._held_tick = tick
                else:
                    self._consumer.on_tick(tick)
        elif kind == WAKE:
            if self.role == LEADER and topic not in self._last and topic not in self._cluster_topics:
                self._cluster_topics.add(topic)
                self._on_interest()
        elif kind == HANDOVER and self.role == FOLLOWER:
            self._beat_now.set()

    def _on_delta(self, notice: Notice) -> None:
        topic = notice.topic
        last = self._last.get(topic)
        if topic in self._syncing or last is None:
            self._need_sync(topic, notice.seq)
            return
        if notice.seq <= last.seq:
            return
        if notice.seq != last.seq + 1:
            self._need_sync(topic, notice.seq)
            return
        self._apply_frame(last, notice.seq, notice.data)

    def _apply_frame(self, last: Publication, seq: int, frame: bytes) -> None:
        patch = orjson.loads(frame)["patch"]
        document = merge_patch(last.document, patch)
        self._deliver(Publication(last.topic, seq, document, patch, frame=frame))

    def _need_sync(self, topic: str, seen: int) -> None:
        if topic in self._syncing:
            self._syncing[topic] = max(self._syncing[topic], seen)
        else:
            self._spawn(self._sync(topic))

    async def _sync(self, topic: str, *, force: bool = False) -> None:
        """Bring ``topic`` up to what Redis holds: replayed deltas when the stream reaches back, else a snapshot.

        With no stored document the leader is asked for the topic (its reset notice brings us back here).
        """
        if topic in self._syncing:
            return
        self._syncing[topic] = -1
        try:
            await self._touch([topic])
            while True:
                state, history = await self._shared().read_topic(topic, self.history_size)
                if topic not in self._watchers or self.role != FOLLOWER:
                    return
                if state is None:
                    assert self._feed is not None
                    await self._feed.wake(topic)
                    return
                self._catch_up(topic, state, history, force=force)
                force = False
                if self._syncing[topic] <= state.seq:
                    return
                self._syncing[topic] = -1
        except REDIS_ERRORS as exc:
            self._held_tick = None  # this topic did not catch up: the tick does not vouch for it
            self._spawn_fall_back(exc)
        finally:
            self._syncing.pop(topic, None)
            self._release_held_tick()

    def _release_held_tick(self) -> None:
        """Pass on the tick heard during resynchronisations once none is left (the topics caught up)."""
        tick, self._held_tick = self._held_tick, None
        if tick is None or self._syncing:
            self._held_tick = tick
        elif self.state == READY and self.role == FOLLOWER:
            self._consumer.on_tick(tick)

    def _catch_up(
        self, topic: str, state: StoredTopic, history: list[tuple[int, bytes]], *, force: bool = False
    ) -> None:
        """Move ``topic`` forward to ``state``: by the stored deltas when they connect, else by a snapshot."""
        last = self._last.get(topic)
        if last is not None and not force:
            if state.seq <= last.seq:
                return
            missing = [(seq, frame) for seq, frame in history if last.seq < seq <= state.seq]
            if missing and missing[0][0] == last.seq + 1 and missing[-1][0] == state.seq:
                for seq, frame in missing:
                    self._apply_frame(self._last[topic], seq, frame)
                return
        self._metrics.repairs.inc()
        kept = tuple((seq, frame) for seq, frame in history if seq <= state.seq)
        document = orjson.loads(state.document)
        self._deliver(Publication(topic, state.seq, document, snapshot=True, history=kept))

    # -- helpers ----------------------------------------------------------------

    def _redis_client(self) -> aioredis.Redis:
        if self._redis is None:
            raise ConnectionError("not connected to Redis")
        return self._redis

    def _shared(self) -> SharedLog:
        if self._log is None:
            raise ConnectionError("not connected to Redis")
        return self._log

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._session_tasks.add(task)
        task.add_done_callback(self._session_tasks.discard)


def _parse_tick(data: bytes) -> Tick | None:
    try:
        read_at, contexts, order = orjson.loads(data)
        return Tick(float(read_at), int(contexts), int(order))
    except (ValueError, TypeError):
        return None


def _parse_status(frame: bytes) -> DatabaseStatus:
    if not frame:
        return DatabaseStatus(protocol.DATABASE_OK, _now())
    message = orjson.loads(frame)
    return DatabaseStatus(message["database"], message["since"])


def _now() -> str:
    from ..timefmt import utc_now_text

    return utc_now_text()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
