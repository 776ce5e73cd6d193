"""restcache.RestCache over a real Hub and LocalBroker, with a scripted wall clock: freshness,
leases, encode-once items, list pages and their ETags."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from pushsvc import restcache
from pushsvc.broker import LocalBroker, Tick, names_order
from pushsvc.documents import CONTEXT_KEYS, list_document, list_item
from pushsvc.hub import Hub
from pushsvc.protocol import DATABASE_OK, DATABASE_UNAVAILABLE, DatabaseStatus
from pushsvc.restcache import RestCache

DETAIL = "vm-context/pg1"
NOW = 1_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def entry(name: str, status: str = "replicating", cpus: int = 2, job: object = None) -> dict:
    return {
        "context_id": f"ctx-{name}",
        "vm_name": name,
        "current_status": status,
        "cpu_count": cpus,
        "current_job": job,
    }


@pytest.fixture
async def wired():
    broker = LocalBroker("e1")
    hub = Hub(broker, history_size=8)
    await broker.open(hub, lambda: None)
    clock = Clock()
    cache = RestCache(hub, interval=1.0, margin=0.5, ttl=60.0, clock=clock)
    yield broker, hub, cache, clock
    cache.close()


@pytest.fixture
def items(monkeypatch):
    """Short list items (the test entries' context fields), counting projections."""
    projected: list[str] = []

    def project(entry: dict) -> dict:
        projected.append(entry["vm_name"])
        return {key: value for key, value in entry.items() if key != "current_job"}

    monkeypatch.setitem(restcache.LIST_VARIANTS, "", project)
    return projected


def tick(broker: LocalBroker, clock: Clock, contexts: int = 0) -> None:
    """A completed read now; its order is the published dashboard's, as the poller's would be."""
    last = broker.last("vm-contexts")
    order = 0 if last is None else names_order(last.document["vm_contexts"])
    broker.publish_tick(Tick(clock.now, contexts, order))


async def test_nothing_is_live_until_a_tick_confirms_the_document(wired):
    broker, hub, cache, clock = wired
    assert cache.detail("pg1") is None
    cache.keep_live(DETAIL)
    assert list(broker.watched()) == [DETAIL] and cache.detail("pg1") is None  # pending
    broker.publish_snapshot(DETAIL, {"context": {"vm_name": "pg1"}})
    assert cache.detail("pg1") is None  # materialised, not yet confirmed
    tick(broker, clock)
    answer = cache.detail("pg1")
    assert answer is not None and answer.found
    assert answer.etag == '"e1:0"' and answer.body == b'{"context":{"vm_name":"pg1"}}'


async def test_the_answer_is_encoded_once_per_change(wired):
    broker, hub, cache, clock = wired
    cache.keep_live(DETAIL)
    broker.publish_snapshot(DETAIL, {"n": 1})
    tick(broker, clock)
    first = cache.detail("pg1")
    assert cache.detail("pg1") is first and first.body is first.body
    broker.publish_delta(DETAIL, {"n": 2}, {"n": 2})
    second = cache.detail("pg1")
    assert second is not first and (second.etag, second.body) == ('"e1:1"', b'{"n":2}')


async def test_freshness_is_one_interval_plus_the_margin(wired):
    broker, hub, cache, clock = wired
    cache.keep_live(DETAIL)
    broker.publish_snapshot(DETAIL, {"n": 1})
    tick(broker, clock)
    clock.now = NOW + 1.5
    assert cache.detail("pg1") is not None
    clock.now = NOW + 1.51
    assert cache.detail("pg1") is None
    tick(broker, clock)  # a newer read confirms it again
    assert cache.detail("pg1") is not None


async def test_a_clock_stepping_back_does_not_make_an_old_read_fresh(wired):
    broker, hub, cache, clock = wired
    cache.keep_live(DETAIL)
    broker.publish_snapshot(DETAIL, {"n": 1})
    tick(broker, clock)
    hub.tick_received -= 2.0  # the news arrived 2 s ago by the monotonic clock
    assert cache.detail("pg1") is None


async def test_database_unavailable_ends_answers_from_memory_at_once(wired):
    broker, hub, cache, clock = wired
    cache.keep_live(DETAIL)
    broker.publish_snapshot(DETAIL, {"n": 1})
    tick(broker, clock)
    broker.publish_status(DatabaseStatus(DATABASE_UNAVAILABLE, "2025-09-09T12:00:00Z"))
    assert cache.detail("pg1") is None
    broker.publish_status(DatabaseStatus(DATABASE_OK, "2025-09-09T12:00:01Z"))
    assert cache.detail("pg1") is None  # ok is not a confirmation: the next tick is
    tick(broker, clock)
    assert cache.detail("pg1") is not None


async def test_a_missing_vm_is_an_answer_without_a_body(wired):
    broker, hub, cache, clock = wired
    cache.keep_live(DETAIL)
    broker.publish_snapshot(DETAIL, None)
    tick(broker, clock)
    answer = cache.detail("pg1")
    assert answer is not None and not answer.found and answer.etag == '"e1:0"'


async def test_list_pages_are_joined_from_items_encoded_once_per_change(wired, items):
    broker, hub, cache, clock = wired
    cache.keep_live("vm-contexts")
    a, b, c = entry("a"), entry("b", "failed"), entry("c")
    broker.publish_snapshot("vm-contexts", {"vm_contexts": {"a": a, "b": b, "c": c}})
    tick(broker, clock, contexts=3)

    def expected(*entries: dict, count: int | None = None) -> bytes:
        shown = [{k: v for k, v in e.items() if k != "current_job"} for e in entries]
        return orjson.dumps(list_document(len(entries) if count is None else count, shown))

    whole = cache.listing(None, None, 0)
    assert whole.etag == '"e1:0"' and whole.body == expected(a, b, c)
    assert cache.listing(None, None, 0) is whole
    page = cache.listing(None, 1, 1)
    assert page.etag == '"e1:0;limit=1;offset=1"' and page.body == expected(b, count=3)
    failed = cache.listing("failed", None, 0)
    assert failed.etag == '"e1:0;status=failed"' and failed.body == expected(b)
    assert cache.listing("completed", 10, 5).body == b'{"count":0,"vm_contexts":[]}'
    assert cache.listing(None, None, 7).body == b'{"count":3,"vm_contexts":[]}'
    assert sorted(items) == ["a", "b", "c"]

    # b changes, d arrives in its place in the order: only those two are projected again.
    b2, d = entry("b", "failed", cpus=4), entry("bb")
    broker.publish_delta("vm-contexts", {}, {"vm_contexts": {"a": a, "b": b2, "bb": d, "c": c}})
    tick(broker, clock, contexts=4)
    assert cache.listing(None, None, 0).body == expected(a, b2, d, c)
    assert sorted(items) == ["a", "b", "b", "bb", "c"]


async def test_the_list_is_not_served_when_the_dashboard_lacks_a_context(wired, items):
    broker, hub, cache, clock = wired
    cache.keep_live("vm-contexts")
    broker.publish_snapshot("vm-contexts", {"vm_contexts": {"a": entry("a")}})
    tick(broker, clock, contexts=2)  # two contexts named "a": the dashboard shows one
    assert cache.listing(None, None, 0) is None
    tick(broker, clock, contexts=1)
    assert cache.listing(None, None, 0) is not None


async def test_position_of_a_database_read(wired):
    broker, hub, cache, clock = wired
    assert cache.position_of(b'{"n":1}', "pg1") is None
    cache.keep_live(DETAIL)
    broker.publish_snapshot(DETAIL, {"n": 1})
    # No tick needed: equal bytes are the document at that position.
    assert cache.position_of(b'{"n":1}', "pg1") == '"e1:0"'
    assert cache.position_of(b'{"n":2}', "pg1") is None


async def test_leases_renew_on_use_and_expire_through_the_hub():
    broker = LocalBroker("e1")
    hub = Hub(broker, history_size=8)
    await broker.open(hub, lambda: None)
    cache = RestCache(hub, interval=1.0, margin=0.5, ttl=0.05)
    try:
        cache.keep_live(DETAIL)
        cache.keep_live("vm-contexts")
        assert set(broker.watched()) == {DETAIL, "vm-contexts"} and hub.subscription_count == 2
        assert cache.live_topics == 2
        async with asyncio.timeout(5):
            while broker.watched():
                await asyncio.sleep(0.01)
        assert not hub.topics and cache.live_topics == 0 and hub.subscription_count == 0
        cache.keep_live("vm-context/" + "x" * 300)  # no such topic can exist
        assert cache.live_topics == 0
    finally:
        cache.close()


async def test_live_ttl_zero_turns_it_all_off():
    broker = LocalBroker("e1")
    hub = Hub(broker, history_size=8)
    await broker.open(hub, lambda: None)
    cache = RestCache(hub, interval=1.0, margin=0.5, ttl=0)
    cache.keep_live(DETAIL)
    assert not broker.watched() and cache.detail("pg1") is None


def test_the_seed_list_item_is_the_context_part_of_a_dashboard_entry():
    context = {"context_id": "c", "vm_name": "v", "current_status": "failed"}
    full = dict.fromkeys(CONTEXT_KEYS) | context
    assert list_item({**full, "current_job": {"id": "j"}}) == full
    assert list(list_item({**full, "current_job": None})) == list(full)


async def test_database_reads_for_one_answer_are_shared_within_the_bound(wired):
    broker, hub, cache, clock = wired
    started: list[str] = []
    gate = asyncio.Event()

    async def read(name: str) -> str:
        started.append(name)
        await gate.wait()
        return name

    first = asyncio.ensure_future(cache.shared_read("k", lambda: read("first")))
    second = asyncio.ensure_future(cache.shared_read("k", lambda: read("second")))
    other = asyncio.ensure_future(cache.shared_read("other", lambda: read("other")))
    await asyncio.sleep(0)
    second.cancel()  # a waiter giving up does not cancel the read for the others
    gate.set()
    assert await first == "first" and await other == "other" and started == ["first", "other"]
    assert await cache.shared_read("k", lambda: read("third")) == "third"  # none in flight: a new read


async def test_a_shared_read_older_than_the_bound_is_not_joined():
    broker = LocalBroker("e1")
    hub = Hub(broker, history_size=8)
    ticks = iter([0.0, 2.0])
    cache = RestCache(hub, interval=1.0, margin=0.5, ttl=60, monotonic=lambda: next(ticks))
    gate = asyncio.Event()
    started: list[int] = []

    async def read(n: int) -> int:
        started.append(n)
        await gate.wait()
        return n

    first = cache.shared_read("k", lambda: read(1))
    second = cache.shared_read("k", lambda: read(2))  # 2 s later: past interval + margin
    gate.set()
    assert (await first, await second) == (1, 2)
    cache.close()


async def test_reads_are_not_shared_when_answers_from_memory_are_off():
    broker = LocalBroker("e1")
    cache = RestCache(Hub(broker, history_size=8), interval=1.0, margin=0.5, ttl=0)
    started: list[int] = []

    async def read(n: int) -> int:
        started.append(n)
        await asyncio.sleep(0)
        return n

    assert await asyncio.gather(cache.shared_read("k", lambda: read(1)), cache.shared_read("k", lambda: read(2))) == [
        1,
        2,
    ]


async def test_a_late_topic_waits_for_the_next_tick_instead_of_the_database(wired):
    broker, hub, cache, clock = wired
    assert not await cache.wait_live(DETAIL)  # never materialised: read the database at once
    cache.keep_live(DETAIL)
    broker.publish_snapshot(DETAIL, {"n": 1})
    tick(broker, clock)
    assert not await cache.wait_live(DETAIL)  # live already: nothing to wait for
    clock.now = NOW + 2.0  # late
    waiting = asyncio.ensure_future(cache.wait_live(DETAIL))
    await asyncio.sleep(0)
    assert not waiting.done()
    tick(broker, clock)
    assert await waiting and cache.detail("pg1") is not None


async def test_no_waiting_once_the_database_is_reported_down(wired):
    broker, hub, cache, clock = wired
    cache.keep_live(DETAIL)
    broker.publish_snapshot(DETAIL, {"n": 1})
    tick(broker, clock)
    clock.now = NOW + 2.0
    waiting = asyncio.ensure_future(cache.wait_live(DETAIL))
    await asyncio.sleep(0)
    broker.publish_status(DatabaseStatus(DATABASE_UNAVAILABLE, "2025-09-09T12:00:00Z"))
    assert not await waiting
    assert not await cache.wait_live(DETAIL)  # and no wait at all while it is down


async def test_waiting_ends_after_interval_plus_margin():
    broker = LocalBroker("e1")
    hub = Hub(broker, history_size=8)
    await broker.open(hub, lambda: None)
    clock = Clock()
    cache = RestCache(hub, interval=0.05, margin=0.05, ttl=60.0, clock=clock)
    cache.keep_live(DETAIL)
    broker.publish_snapshot(DETAIL, {"n": 1})
    broker.publish_tick(Tick(clock.now, 0))
    clock.now = NOW + 1.0
    started = asyncio.get_running_loop().time()
    assert not await cache.wait_live(DETAIL)
    assert asyncio.get_running_loop().time() - started >= 0.09
    cache.close()


async def test_a_list_in_another_order_than_the_database_s_is_not_served(wired, items):
    broker, hub, cache, clock = wired
    cache.keep_live("vm-contexts")
    broker.publish_snapshot("vm-contexts", {"vm_contexts": {"a": entry("a"), "b": entry("b")}})
    # A follower's copy with "b" appended after a patch, while the leader's order is b, a.
    broker.publish_tick(Tick(clock.now, 2, names_order({"b": None, "a": None})))
    assert cache.listing(None, None, 0) is None
    tick(broker, clock, contexts=2)
    assert cache.listing(None, None, 0) is not None
