"""broker.LocalBroker: seq authority, last publication, interest, retained status."""

from __future__ import annotations

from pushsvc.broker import LocalBroker
from pushsvc.protocol import DATABASE_UNAVAILABLE, DatabaseStatus

from .fakes import RecordingConsumer


async def _open() -> tuple[LocalBroker, RecordingConsumer, list[str]]:
    broker, consumer, woken = LocalBroker("e1"), RecordingConsumer(), []
    await broker.open(consumer, lambda: woken.append("wake"))
    return broker, consumer, woken


async def test_first_watcher_wakes_the_change_source_once():
    broker, _, woken = await _open()
    broker.watch("t")
    broker.watch("t")
    assert woken == ["wake"] and list(broker.watched()) == ["t"]
    broker.unwatch("t")
    assert list(broker.watched()) == ["t"]
    broker.unwatch("t")
    assert list(broker.watched()) == []


async def test_snapshot_then_deltas_count_up():
    broker, consumer, _ = await _open()
    broker.watch("t")
    assert broker.last("t") is None
    broker.publish_snapshot("t", {"a": 1})
    broker.publish_delta("t", {"a": 2}, {"a": 2})
    broker.publish_delta("t", {"a": 3}, {"a": 3})
    assert [(p.seq, p.snapshot, p.patch) for p in consumer.publications] == [
        (0, True, None),
        (1, False, {"a": 2}),
        (2, False, {"a": 3}),
    ]
    assert broker.last("t") == consumer.publications[-1]


async def test_unwatched_topics_are_not_published():
    broker, consumer, _ = await _open()
    broker.publish_snapshot("t", {"a": 1})
    broker.publish_delta("t", {"a": 2}, {"a": 2})
    assert consumer.publications == [] and broker.last("t") is None


async def test_a_dropped_topic_restarts_above_every_seq_handed_out():
    broker, consumer, _ = await _open()
    broker.watch("t")
    broker.publish_snapshot("t", 1)
    for value in range(2, 5):
        broker.publish_delta("t", value, value)
    broker.unwatch("t")
    assert broker.last("t") is None
    broker.watch("u")
    broker.publish_snapshot("u", "doc")
    broker.watch("t")
    broker.publish_snapshot("t", "again")
    assert [(p.topic, p.seq) for p in consumer.publications[-2:]] == [("u", 4), ("t", 4)]


async def test_status_goes_to_the_consumer():
    broker, consumer, _ = await _open()
    status = DatabaseStatus(DATABASE_UNAVAILABLE, "2026-01-01T00:00:00Z")
    broker.publish_status(status)
    assert consumer.statuses == [status]


async def test_closed_broker_delivers_nothing():
    broker, consumer, _ = await _open()
    await broker.close()
    broker.watch("t")
    broker.publish_snapshot("t", 1)
    assert consumer.publications == []
