"""hub.Hub fed by a LocalBroker: pending topics, encode-once fan-out, history and resume, retained status."""

from __future__ import annotations

import orjson
import pytest

from pushsvc.broker import LocalBroker
from pushsvc.hub import Hub
from pushsvc.protocol import DATABASE_OK, DATABASE_UNAVAILABLE, DatabaseStatus

from .fakes import FakeSubscriber

T = "vm-context/pg1"


@pytest.fixture
async def wired():
    broker = LocalBroker("e1")
    hub = Hub(broker, history_size=3)
    woken: list[int] = []
    await broker.open(hub, lambda: woken.append(1))
    return broker, hub, woken


async def test_a_new_topic_waits_for_its_first_document(wired):
    broker, hub, woken = wired
    first, second = FakeSubscriber(), FakeSubscriber()
    hub.subscribe(first, T, None, "a")
    hub.subscribe(second, T, None, None)
    assert woken == [1] and list(broker.watched()) == [T]
    assert first.snapshots == [] and hub.snapshot_message(T) is None
    broker.publish_snapshot(T, {"context": 1})
    assert first.snapshots == [(T, "a")] and second.snapshots == [(T, None)]
    snapshot = orjson.loads(hub.snapshot_message(T, "a"))
    assert snapshot == {"id": "a", "type": "snapshot", "topic": T, "epoch": "e1", "seq": 0, "data": {"context": 1}}


async def test_a_materialised_topic_answers_at_once(wired):
    broker, hub, woken = wired
    keeper, late = FakeSubscriber(), FakeSubscriber()
    hub.subscribe(keeper, T, None, None)
    broker.publish_snapshot(T, 1)
    hub.subscribe(late, T, None, 5)
    assert late.snapshots == [(T, 5)] and woken == [1]
    assert hub.subscription_count == 2


async def test_deltas_are_encoded_once_for_every_subscriber(wired):
    broker, hub, _ = wired
    sessions = [FakeSubscriber() for _ in range(3)]
    for session in sessions:
        hub.subscribe(session, T, None, None)
    broker.publish_snapshot(T, {"p": 1})
    broker.publish_delta(T, {"p": 2}, {"p": 2})
    (topic, data), *_ = sessions[0].offered
    assert all(session.offered[0][1] is data for session in sessions)
    assert orjson.loads(data) == {"type": "delta", "topic": T, "epoch": "e1", "seq": 1, "patch": {"p": 2}}
    assert hub.topics[T].seq == 1


async def test_snapshot_is_cached_until_the_next_publication(wired):
    broker, hub, _ = wired
    hub.subscribe(FakeSubscriber(), T, None, None)
    broker.publish_snapshot(T, {"p": 1})
    first = hub.snapshot_message(T)
    assert hub.snapshot_message(T) is first
    broker.publish_delta(T, {"p": 2}, {"p": 2})
    assert orjson.loads(hub.snapshot_message(T))["data"] == {"p": 2}


async def _with_history(broker: LocalBroker, hub: Hub, deltas: int) -> FakeSubscriber:
    keeper = FakeSubscriber()
    hub.subscribe(keeper, T, None, None)
    broker.publish_snapshot(T, 0)
    for value in range(1, deltas + 1):
        broker.publish_delta(T, value, value)
    return keeper


async def test_resume_replays_the_missed_deltas_with_the_request_id(wired):
    broker, hub, _ = wired
    await _with_history(broker, hub, 5)
    again = FakeSubscriber()
    hub.subscribe(again, T, ("e1", 3), "r")
    replayed = [orjson.loads(data) for _, data in again.offered]
    assert [(m["id"], m["seq"], m["patch"]) for m in replayed] == [("r", 4, 4), ("r", 5, 5)]
    assert again.snapshots == []


@pytest.mark.parametrize(
    "since",
    [("e1", 1), ("other", 4), ("e1", 99), ("e1", 5)],
    ids=["older than the history", "other epoch", "future seq", "already current"],
)
async def test_resume_without_the_history_gets_a_snapshot(wired, since):
    broker, hub, _ = wired
    await _with_history(broker, hub, 5)  # history_size 3: seqs 3, 4, 5 kept
    again = FakeSubscriber()
    hub.subscribe(again, T, since, "r")
    assert again.offered == [] and again.snapshots == [(T, "r")]


async def test_last_unsubscribe_drops_the_topic_and_its_interest(wired):
    broker, hub, _ = wired
    session = await _with_history(broker, hub, 2)
    assert hub.unsubscribe(session, T) and T not in hub.topics
    assert list(broker.watched()) == [] and hub.subscription_count == 0
    assert not hub.unsubscribe(session, T)
    hub.subscribe(session, T, ("e1", 2), None)
    broker.publish_snapshot(T, "again")
    assert hub.topics[T].seq == 3  # above every seq handed out before: the old since cannot match
    assert session.snapshots[-1] == (T, None)


async def test_drop_session_leaves_every_topic(wired):
    broker, hub, _ = wired
    session = FakeSubscriber()
    hub.register(session)
    hub.subscribe(session, T, None, None)
    hub.subscribe(session, "vm-contexts", None, None)
    hub.drop_session(session)
    assert hub.topics == {} and hub.sessions == set() and list(broker.watched()) == []


async def test_a_waiting_subscriber_that_left_gets_nothing(wired):
    broker, hub, _ = wired
    leaver, stayer = FakeSubscriber(), FakeSubscriber()
    hub.subscribe(leaver, T, None, None)
    hub.subscribe(stayer, T, None, None)
    hub.unsubscribe(leaver, T)
    broker.publish_snapshot(T, 1)
    assert leaver.snapshots == [] and stayer.snapshots == [(T, None)]


async def test_database_status_is_retained_for_new_sessions_until_ok(wired):
    broker, hub, _ = wired
    early = FakeSubscriber()
    hub.register(early)
    broker.publish_status(DatabaseStatus(DATABASE_UNAVAILABLE, "2026-01-01T00:00:00Z"))
    late = FakeSubscriber()
    hub.register(late)
    unavailable = {"type": "status", "database": "unavailable", "since": "2026-01-01T00:00:00Z"}
    assert [orjson.loads(data) for data in early.sent] == [unavailable]
    assert [orjson.loads(data) for data in late.sent] == [unavailable]
    broker.publish_status(DatabaseStatus(DATABASE_OK, "2026-01-01T00:00:05Z"))
    assert orjson.loads(late.sent[-1])["database"] == "ok"
    later = FakeSubscriber()
    hub.register(later)
    assert later.sent == []
