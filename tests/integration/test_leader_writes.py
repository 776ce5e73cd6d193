"""The leader's writes against a private redis-server: on the wire at once, replies in order, failures reported.

The ordering test blocks the event loop inside the leader's local delivery,
as a fan-out to thousands of sockets does, and waits there for a listener in
another thread to hear the delta through Redis: it can only hear it if the
leader's write left before the local delivery began.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
from redis.exceptions import NoScriptError

from pushsvc.broker import DetachedConsumer, Publication
from pushsvc.cluster.broker import LEADER, RedisBroker
from pushsvc.cluster.connect import open_redis
from pushsvc.cluster.feed import DELTA, parse_notice
from pushsvc.cluster.layout import Layout
from pushsvc.cluster.leaderwrites import LeaderWrites
from pushsvc.cluster.lease import Lease
from pushsvc.cluster.sharedlog import NOT_LEADER, Refused, SharedLog, StoredTopic
from pushsvc.config import BrokerConfig
from pushsvc.metrics import Metrics

TOPIC = "vm-contexts"
HEARD_TIMEOUT = 5.0  # seconds the blocked loop waits for the listener (it hears it in about a millisecond)


class ChannelListener:
    """A blocking subscriber in its own thread: it hears the channel while the event loop is blocked."""

    def __init__(self, url: str, channel: str) -> None:
        self._pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)
        self._pubsub.get_message(timeout=1.0)  # the subscription's confirmation
        self.heard: dict[int, threading.Event] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def delta(self, seq: int) -> threading.Event:
        return self.heard.setdefault(seq, threading.Event())

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.1)
            if message is None:
                continue
            notice = parse_notice(message["data"])
            if notice is not None and notice.kind == DELTA:
                self.delta(notice.seq).set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()


class BlockingHub(DetachedConsumer):
    """A consumer whose delivery of each delta blocks the loop until the listener has heard that delta."""

    def __init__(self, listener: ChannelListener) -> None:
        self.listener = listener
        self.heard_first: list[bool] = []
        self.interest = asyncio.Event()

    def on_publication(self, publication: Publication) -> None:
        if not publication.snapshot:
            self.heard_first.append(self.listener.delta(publication.seq).wait(HEARD_TIMEOUT))


async def test_followers_hear_a_delta_before_the_leader_fans_it_out(redis_server):
    listener = ChannelListener(redis_server.url, Layout("pushsvc").channel)
    broker = RedisBroker(BrokerConfig(url=redis_server.url), history_size=16, interval=1.0, metrics=Metrics())
    hub = BlockingHub(listener)
    try:
        await broker.open(hub, hub.interest.set)
        broker.watch(TOPIC)
        async with asyncio.timeout(10):
            while broker.role != LEADER:
                hub.interest.clear()
                await hub.interest.wait()  # the take-over asks the poller to read
        broker.publish_snapshot(TOPIC, {"a": 0})
        for value in range(1, 4):
            broker.publish_delta(TOPIC, {"a": value}, {"a": value})
        assert hub.heard_first == [True, True, True], "each delta reached Redis before the local delivery ended"
    finally:
        await broker.close()
        listener.close()


async def test_close_returns_even_when_redis_py_swallows_the_cancellation(redis_server):
    """redis-py can lose a cancellation that lands inside a command (redis/redis-py#2028, #2551);
    close() is timed to land in the heartbeat's commands at successive points."""
    for steps in range(12):
        broker = RedisBroker(BrokerConfig(url=redis_server.url), history_size=16, interval=1.0, metrics=Metrics())
        interest = asyncio.Event()
        await broker.open(DetachedConsumer(), interest.set)
        broker.watch(TOPIC)
        async with asyncio.timeout(10):
            while broker.role != LEADER:
                interest.clear()
                await interest.wait()
        broker._beat_now.set()  # a heartbeat starts now
        for _ in range(steps):
            await asyncio.sleep(0)
        async with asyncio.timeout(5):
            await broker.close()


@pytest.fixture
async def client(redis_server):
    client = open_redis(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def log(client) -> tuple[SharedLog, str]:
    layout = Layout("t")
    assert await Lease(client, layout.leader, "L", ttl=30).hold()
    log = SharedLog(client, layout, history_size=4)
    return log, await log.join_epoch()


class Reports:
    """What a LeaderWrites reported: its first refusal and its first failure."""

    def __init__(self) -> None:
        self.refused: asyncio.Future[Refused] = asyncio.get_running_loop().create_future()
        self.failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()


@contextlib.asynccontextmanager
async def opened_writes(client: Any, log: SharedLog, limit: int = 100) -> AsyncIterator[tuple[LeaderWrites, Reports]]:
    """A connected LeaderWrites and what it reports; closed afterwards."""
    reports = Reports()
    writes = LeaderWrites(
        client,
        log.write_scripts,
        on_refused=reports.refused.set_result,
        on_failed=reports.failed.set_result,
        limit=limit,
    )
    await writes.open()
    try:
        yield writes, reports
    finally:
        await writes.close()


async def test_writes_apply_in_order_and_flush_waits_for_every_reply(client, log):
    shared, epoch = log
    async with opened_writes(client, shared) as (writes, reports):
        writes.send(shared.reset_write("L", epoch, TOPIC, 0, b'{"v":0}'))
        for seq in range(1, 6):  # each one needs the one before it (the script checks the seq)
            writes.send(shared.publish_write("L", epoch, TOPIC, seq, b'{"v":%d}' % seq, b"frame %d" % seq))
        assert writes.pending == 6
        await writes.flush()
        assert writes.pending == 0
        assert await shared.load([TOPIC]) == {TOPIC: StoredTopic(5, b'{"v":5}')}
        assert not reports.refused.done() and not reports.failed.done()


async def test_a_refused_write_is_reported_once_and_ends_the_reading(client, log):
    shared, epoch = log
    async with opened_writes(client, shared) as (writes, reports):
        writes.send(shared.reset_write("someone-else", epoch, TOPIC, 0, b"{}"))
        writes.send(shared.reset_write("someone-else", epoch, "vm-context/x", 0, b"{}"))
        refused = await asyncio.wait_for(reports.refused, 5)
        assert refused.code == NOT_LEADER
        await writes.flush()
        assert await shared.load([TOPIC]) == {}, "the fence kept the write out"


async def test_a_flushed_script_cache_is_a_failure_not_a_silent_loss(client, log):
    shared, epoch = log
    async with opened_writes(client, shared) as (writes, reports):
        await client.script_flush()
        writes.send(shared.reset_write("L", epoch, TOPIC, 0, b"{}"))
        failure = await asyncio.wait_for(reports.failed, 5)
        assert isinstance(failure, NoScriptError)


async def test_redis_gone_is_reported(redis_server, client, log):
    shared, epoch = log
    async with opened_writes(client, shared) as (writes, reports):
        redis_server.stop()
        try:
            writes.send(shared.reset_write("L", epoch, TOPIC, 0, b"{}"))
        except ConnectionError:
            return  # the transport had already seen the connection close
        failure = await asyncio.wait_for(reports.failed, 5)
        assert isinstance(failure, (ConnectionError, OSError, redis.RedisError))


async def test_too_many_unanswered_writes_refuse_to_send(client, log):
    shared, epoch = log
    async with opened_writes(client, shared, limit=2) as (writes, _):
        writes.send(shared.tick_write("L", epoch, b"[1, 1, 1]"))
        writes.send(shared.tick_write("L", epoch, b"[2, 1, 1]"))
        with pytest.raises(TimeoutError):
            writes.send(shared.tick_write("L", epoch, b"[3, 1, 1]"))
        await writes.flush()
        writes.send(shared.tick_write("L", epoch, b"[4, 1, 1]"))  # answered: room again


async def test_a_closed_writer_refuses_to_send(client, log):
    shared, epoch = log
    async with opened_writes(client, shared) as (writes, _):
        pass
    with pytest.raises(ConnectionError):
        writes.send(shared.tick_write("L", epoch, b"[1, 1, 1]"))
