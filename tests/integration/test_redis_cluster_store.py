"""The cluster's Redis layout against a private redis-server: lease, epoch, shared log, interest, feed."""

from __future__ import annotations

import asyncio

import pytest

from pushsvc.cluster.connect import open_redis
from pushsvc.cluster.feed import DELTA, HANDOVER, RESET, STATUS, WAKE, Feed, parse_notice
from pushsvc.cluster.interest import Interest
from pushsvc.cluster.layout import Layout
from pushsvc.cluster.lease import Lease
from pushsvc.cluster.sharedlog import EPOCH_CHANGED, NOT_LEADER, SEQ_CONFLICT, Refused, SharedLog, StoredTopic

TOPIC = "vm-context/web 01 \n(ü)"  # any character may be in a VM name


@pytest.fixture
async def redis(redis_server):
    client = open_redis(redis_server.url)
    yield client
    await client.aclose()


async def eventually(check, timeout: float = 5.0) -> None:
    """Await a time-based outcome (a TTL running out): re-check until true or the deadline."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


async def test_lease_is_held_renewed_released_and_expires(redis):
    layout = Layout("t")
    a = Lease(redis, layout.leader, "a", ttl=0.3)
    b = Lease(redis, layout.leader, "b", ttl=0.3)
    assert await a.hold()
    assert not await b.hold()
    assert await a.hold(), "the holder renews"
    assert await a.current_holder() == "a"
    assert not await b.release(), "only the holder can release"
    assert await a.release()
    assert await b.hold(), "a released lease is free at once"
    # b stops renewing (it died): a gets the lease once the TTL has run out, not before.
    assert not await a.hold()
    await eventually(a.hold)
    assert await a.current_holder() == "a"
    pttl = await redis.pttl(layout.leader)
    assert 0 < pttl <= 300


async def test_namespaces_do_not_share_anything(redis):
    blue, green = Layout("blue"), Layout("green")
    assert await Lease(redis, blue.leader, "x", 5).hold()
    assert await Lease(redis, green.leader, "y", 5).hold()
    assert await SharedLog(redis, blue, 4).join_epoch() != await SharedLog(redis, green, 4).join_epoch()
    assert sorted(await redis.keys("*")) == [b"blue:epoch", b"blue:leader", b"green:epoch", b"green:leader"]


async def test_epoch_survives_clients_and_is_lost_with_redis_data(redis_server, redis):
    log = SharedLog(redis, Layout("t"), 4)
    epoch = await log.join_epoch()
    other = open_redis(redis_server.url)
    try:
        assert await SharedLog(other, Layout("t"), 4).join_epoch() == epoch, "every instance joins the same epoch"
    finally:
        await other.aclose()
    redis_server.restart()  # no persistence: the data is gone
    again = open_redis(redis_server.url)
    try:
        assert await SharedLog(again, Layout("t"), 4).current_epoch() is None
        assert await SharedLog(again, Layout("t"), 4).join_epoch() != epoch
    finally:
        await again.aclose()


@pytest.fixture
async def leader(redis):
    """(log, epoch) with holder 'L' owning the lease."""
    layout = Layout("t")
    assert await Lease(redis, layout.leader, "L", ttl=30).hold()
    log = SharedLog(redis, layout, history_size=4)
    return log, await log.join_epoch()


def frame(seq: int) -> bytes:
    return b'{"type":"delta","seq":%d}' % seq


async def test_publish_stores_document_seq_and_capped_stream_atomically(redis, leader):
    log, epoch = leader
    await log.reset("L", epoch, TOPIC, 0, b'{"v":0}')
    for seq in range(1, 8):
        await log.publish("L", epoch, TOPIC, seq, b'{"v":%d}' % seq, frame(seq))
    assert await log.load([TOPIC, "vm-context/none"]) == {TOPIC: StoredTopic(7, b'{"v":7}')}
    assert await redis.xlen(log.layout.log(TOPIC)) == 4, "exactly history_size deltas are kept"
    assert await log.replay(TOPIC, 3) == [(seq, frame(seq)) for seq in range(4, 8)]
    assert await log.replay(TOPIC, 6) == [(7, frame(7))]
    assert await log.replay(TOPIC, 7) == []
    assert await log.replay(TOPIC, 2) is None, "seq 3 has been trimmed: the client needs a snapshot"
    assert await log.history(TOPIC, 10) == [(seq, frame(seq)) for seq in range(4, 8)]
    assert await log.history(TOPIC, 2) == [(6, frame(6)), (7, frame(7))]
    assert await log.seq_floor() == 8


async def test_writes_are_fenced_on_lease_epoch_and_seq(redis, leader):
    log, epoch = leader
    await log.reset("L", epoch, TOPIC, 0, b"{}")
    with pytest.raises(Refused) as refused:
        await log.publish("someone-else", epoch, TOPIC, 1, b"{}", frame(1))
    assert refused.value.code == NOT_LEADER
    with pytest.raises(Refused) as refused:
        await log.publish("L", "old-epoch", TOPIC, 1, b"{}", frame(1))
    assert refused.value.code == EPOCH_CHANGED
    with pytest.raises(Refused) as refused:
        await log.publish("L", epoch, TOPIC, 2, b"{}", frame(2))
    assert refused.value.code == SEQ_CONFLICT
    with pytest.raises(Refused):
        await log.reset("someone-else", epoch, TOPIC, 1, b"{}")
    with pytest.raises(Refused):
        await log.set_status("someone-else", epoch, b"{}")
    assert await log.load([TOPIC]) == {TOPIC: StoredTopic(0, b"{}")}
    assert await redis.xlen(log.layout.log(TOPIC)) == 0, "refused writes leave nothing behind"


async def test_a_topic_started_again_gets_a_seq_above_all_handed_out(redis, leader):
    log, epoch = leader
    await log.reset("L", epoch, "vm-contexts", 0, b"{}")
    for seq in range(1, 6):
        await log.publish("L", epoch, "vm-contexts", seq, b"{}", frame(seq))
    assert await log.drop("L", epoch, "vm-contexts")
    assert await log.load(["vm-contexts"]) == {}
    assert await log.seq_floor() == 6
    with pytest.raises(Refused) as refused:
        await log.reset("L", epoch, "vm-contexts", 5, b"{}")
    assert refused.value.code == SEQ_CONFLICT, "a fresh topic may not reuse a seq: an old since would match it"
    await log.reset("L", epoch, "vm-contexts", 6, b"{}")
    assert await log.replay("vm-contexts", 5) == []


async def test_drop_keeps_a_topic_someone_watches(redis, leader):
    log, epoch = leader
    interest = Interest(redis, log.layout.interest, ttl=30)
    await log.reset("L", epoch, TOPIC, 0, b"{}")
    await interest.touch([TOPIC])
    assert not await log.drop("L", epoch, TOPIC)
    assert TOPIC in await log.load([TOPIC])


async def test_interest_is_cluster_wide_and_expires(redis):
    layout = Layout("t")
    short = Interest(redis, layout.interest, ttl=0.3)
    long = Interest(redis, layout.interest, ttl=30)
    await short.touch(["vm-contexts", TOPIC])
    await long.touch(["vm-context/db"])
    assert await long.live() == {"vm-contexts", TOPIC, "vm-context/db"}
    await long.touch(["vm-contexts"])
    await short.touch(["vm-contexts"])  # GT: a shorter refresh does not cut another instance's interest

    async def expired() -> bool:
        return await long.live() == {"vm-contexts", "vm-context/db"}

    await eventually(expired)
    assert await redis.zcard(layout.interest) == 2, "expired entries are removed, not just hidden"


async def test_feed_delivers_deltas_resets_status_and_wakes(redis, leader):
    log, epoch = leader
    feed = Feed(redis, log.layout.channel)
    await feed.open()
    try:
        notices = feed.notices()
        await log.reset("L", epoch, TOPIC, 0, b"{}")
        await log.publish("L", epoch, TOPIC, 1, b'{"a":1}', frame(1))
        await log.set_status("L", epoch, b'{"type":"status","database":"unavailable"}')
        await log.set_status("L", epoch, None)
        await feed.wake("vm-contexts")
        await Lease(redis, log.layout.leader, "L", ttl=30, channel=log.layout.channel).release()
        got = [await anext(notices) for _ in range(6)]
        assert [(n.kind, n.topic, n.seq, n.data) for n in got] == [
            (RESET, TOPIC, 0, b""),
            (DELTA, TOPIC, 1, frame(1)),
            (STATUS, "", 0, b'{"type":"status","database":"unavailable"}'),
            (STATUS, "", 0, b""),
            (WAKE, "vm-contexts", 0, b""),
            (HANDOVER, "", 0, b""),
        ]
        assert await log.status() is None
    finally:
        await feed.close()


def test_parse_notice_ignores_foreign_messages():
    assert parse_notice(b"hello") is None
    assert parse_notice(b"D x 3 abc{}") is None
    assert parse_notice(b"D 5 99 abc") is None, "a topic longer than the message"
    assert parse_notice(b"D 5 3 abc{}") is not None
