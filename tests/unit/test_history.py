"""history.History: the resume history bounded in count and in bytes, per topic and over all topics."""

from __future__ import annotations

import orjson

from pushsvc.broker import LocalBroker
from pushsvc.history import History
from pushsvc.hub import Hub

from .fakes import FakeSubscriber

A, B = "vm-context/a", "vm-context/b"


def held(history: History, topic: str) -> list[int]:
    """The seqs of the deltas kept for ``topic`` (what a resume from the earliest possible point replays)."""
    replay = next((found for seq in range(100) if (found := history.after(topic, seq)) is not None), [])
    return [orjson.loads(data)["seq"] for data in replay]


def _sized(seq: int, size: int) -> bytes:
    head = orjson.dumps({"seq": seq, "pad": ""})
    return head[:-2] + b"x" * (size - len(head)) + b'"}'


def test_a_topic_keeps_at_most_its_bytes_oldest_out_first():
    history = History(per_topic=256, per_topic_bytes=1000, total_bytes=10_000)
    for seq in range(1, 11):
        history.append(A, seq, _sized(seq, 300))
    assert held(history, A) == [8, 9, 10] and history.bytes == 900
    assert history.after(A, 7) is not None and history.after(A, 6) is None  # 7 is gone: a snapshot instead


def test_the_count_bound_still_holds():
    history = History(per_topic=2, per_topic_bytes=1 << 20, total_bytes=1 << 20)
    for seq in range(1, 5):
        history.append(A, seq, _sized(seq, 30))
    assert held(history, A) == [3, 4]


def test_all_topics_together_keep_at_most_the_total_oldest_first():
    history = History(per_topic=256, per_topic_bytes=1000, total_bytes=1500)
    history.append(A, 1, _sized(1, 500))
    history.append(B, 1, _sized(1, 500))
    history.append(A, 2, _sized(2, 500))
    history.append(B, 2, _sized(2, 500))  # 2000 > 1500: A's seq 1, the oldest of all, goes
    assert held(history, A) == [2] and held(history, B) == [1, 2] and history.bytes == 1500


def test_a_delta_larger_than_the_topic_bound_is_not_kept():
    history = History(per_topic=256, per_topic_bytes=100, total_bytes=1000)
    history.append(A, 1, _sized(1, 50))
    history.append(A, 2, _sized(2, 150))
    assert history.after(A, 1) is None and history.bytes == 0 and history.held(A) == 0


def test_drop_gives_back_the_topics_bytes():
    history = History(per_topic=256, per_topic_bytes=1000, total_bytes=10_000)
    for seq in range(1, 4):
        history.append(A, seq, _sized(seq, 100))
        history.append(B, seq, _sized(seq, 100))
    history.drop(A)
    assert history.bytes == 300 and history.after(A, 1) is None and held(history, B) == [1, 2, 3]
    for seq in range(4, 40):  # the global order forgot A's deltas: evicting B's works
        history.append(B, seq, _sized(seq, 100))
    assert held(history, B) == list(range(30, 40)) and history.bytes == 1000


def test_after_needs_every_later_delta_and_something_to_replay():
    history = History(per_topic=256, per_topic_bytes=1000, total_bytes=1000)
    for seq in (5, 6, 7):
        history.append(A, seq, _sized(seq, 30))
    assert history.after(A, 4) is not None and len(history.after(A, 4) or []) == 3
    assert history.after(A, 3) is None  # 4 was never held
    assert history.after(A, 7) is None  # nothing after the current seq
    assert history.after(B, 0) is None


async def test_the_hub_bounds_big_deltas_in_bytes_and_answers_an_old_since_with_a_snapshot():
    broker = LocalBroker("e1")
    hub = Hub(broker, history_size=256, history_bytes=64 * 1024, history_total_bytes=1 << 20)
    await broker.open(hub, lambda: None)
    keeper = FakeSubscriber()
    hub.subscribe(keeper, A, None, None)
    broker.publish_snapshot(A, {})
    big = "x" * 20_000
    for seq in range(1, 41):
        broker.publish_delta(A, {"pad": big, "n": seq}, {"n": seq})
    assert hub.history.bytes <= 64 * 1024 and hub.history.held(A) == 3
    late = FakeSubscriber()
    hub.subscribe(late, A, ("e1", 30), "r")
    assert late.offered == [] and late.snapshots == [(A, "r")]
    recent = FakeSubscriber()
    hub.subscribe(recent, A, ("e1", 38), "r")
    assert [orjson.loads(data)["seq"] for _, data in recent.offered] == [39, 40]
    hub.unsubscribe(keeper, A)
    hub.unsubscribe(late, A)
    hub.unsubscribe(recent, A)
    assert hub.history.bytes == 0
