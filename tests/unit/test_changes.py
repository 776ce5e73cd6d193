"""BinlogDriver's decisions, with a scripted source, poller and broker (the seams pushsvc owns).

The real thing, end to end, is tests/integration/test_binlog_live.py; here
each signal's consequence is checked on its own: which read, which interval,
which state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

import pytest

from pushsvc import changes
from pushsvc.binlog import BinlogRequirements, ChangeBatch, Signal, SourceLost
from pushsvc.changes import BinlogDriver, ChangeSourceState, describe_change_source
from pushsvc.config import PollerConfig, parse_database_url
from pushsvc.metrics import Metrics

URL = parse_database_url("mysql://reader@127.0.0.1:3306/oma")


class ScriptedSource:
    """Hands out the signals a test queues; records start and close."""

    started: list[ScriptedSource] = []

    def __init__(self, url: object, **options: Any) -> None:
        self.signals: asyncio.Queue[Signal] = asyncio.Queue()
        self.closed = False
        ScriptedSource.started.append(self)

    def start(self) -> None:
        pass

    async def next(self) -> Signal:
        return await self.signals.get()

    async def close(self) -> None:
        self.closed = True


class RecordingPoller:
    def __init__(self) -> None:
        self.interval = 10.0
        self.ticks = 0
        self.reads: list[Any] = []
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1

    async def poll_once(self) -> None:
        self.reads.append("all")
        self.ticks += 1

    async def poll_contexts(self, context_ids: Collection[str], job_updates_only=None, snapshot=None) -> None:
        self.reads.append(set(context_ids))


class Broker:
    reads_database = True


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> list[ScriptedSource]:
    ScriptedSource.started = []
    monkeypatch.setattr(changes, "BinlogSource", ScriptedSource)
    return ScriptedSource.started


def requirements(*missing: str, answered: bool = True) -> Any:
    async def check(url: object) -> BinlogRequirements:
        return BinlogRequirements(missing, "10.11.19-MariaDB", answered=answered)

    return check


def driver(poller: RecordingPoller, broker: Broker | None = None) -> BinlogDriver:
    config = PollerConfig(interval=10.0, source="binlog")
    return BinlogDriver(poller, broker or Broker(), URL, config, Metrics())  # type: ignore[arg-type]


async def test_missing_requirements_leave_the_poll_loop_in_charge(
    monkeypatch: pytest.MonkeyPatch, scripted: list[ScriptedSource], caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(changes, "check_requirements", requirements("the REPLICATION SLAVE grant"))
    poller = RecordingPoller()
    changes_driver = driver(poller)
    assert poller.interval == 1.0  # polls at the normal interval until the stream is up
    with caplog.at_level(logging.WARNING, "pushsvc.changes"):
        await changes_driver.run()  # returns: nothing to follow
    assert scripted == [] and poller.interval == 1.0
    assert changes_driver.state == ChangeSourceState(
        "binlog", "poll", "binlog source needs the REPLICATION SLAVE grant"
    )
    assert [r.getMessage() for r in caplog.records] == [
        "binlog source needs the REPLICATION SLAVE grant: polling every 1 s instead (poller.source: binlog)"
    ]


async def test_signals_choose_the_read_and_the_interval(
    monkeypatch: pytest.MonkeyPatch, scripted: list[ScriptedSource]
) -> None:
    monkeypatch.setattr(changes, "check_requirements", requirements())
    poller = RecordingPoller()
    changes_driver = driver(poller)
    task = asyncio.create_task(changes_driver.run())
    try:
        await changes_driver.wait_until(lambda: bool(scripted))
        source = scripted[0]
        assert changes_driver.state.active == "poll" and changes_driver.state.reason == (
            "the binlog stream is connecting"
        )

        source.signals.put_nowait(ChangeBatch(full_reread="binlog stream connected", position="0-1-5"))
        await changes_driver.wait_for_position("0-1-5")
        assert poller.reads == ["all"] and poller.interval == 10.0  # the safety net from now on
        assert changes_driver.state.describe() == {"configured": "binlog", "active": "binlog"}

        source.signals.put_nowait(ChangeBatch(context_ids=frozenset({"ctx-1", "ctx-2"}), position="0-1-7"))
        await changes_driver.wait_for_position("0-1-7")
        assert poller.reads[-1] == {"ctx-1", "ctx-2"}

        source.signals.put_nowait(SourceLost("2013: Lost connection"))
        await changes_driver.wait_until(lambda: changes_driver.state.active == "poll")
        assert poller.interval == 1.0 and poller.wakes == 1  # the poll loop reads now, then every second
        assert changes_driver.state.reason == "binlog stream lost (2013: Lost connection); retrying"

        source.signals.put_nowait(ChangeBatch(full_reread="binlog stream reconnected", position="0-1-9"))
        await changes_driver.wait_for_position("0-1-9")
        assert poller.reads[-1] == "all" and poller.interval == 10.0 and changes_driver.batches == 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert source.closed


async def test_a_follower_stops_the_source_and_a_new_leader_starts_one(
    monkeypatch: pytest.MonkeyPatch, scripted: list[ScriptedSource]
) -> None:
    monkeypatch.setattr(changes, "check_requirements", requirements())
    monkeypatch.setattr(changes, "ROLE_CHECK", 0.01)
    broker, poller = Broker(), RecordingPoller()
    changes_driver = driver(poller, broker)
    task = asyncio.create_task(changes_driver.run())
    try:
        await changes_driver.wait_until(lambda: len(scripted) == 1)
        broker.reads_database = False
        await changes_driver.wait_until(lambda: scripted[0].closed)
        assert changes_driver.source is None and changes_driver.state.reason == changes.FOLLOWER
        assert describe_change_source(changes_driver, broker) == {  # type: ignore[arg-type]
            "configured": "binlog",
            "active": "none",
            "reason": "a cluster follower: the leader reads the database",
        }
        broker.reads_database = True
        await changes_driver.wait_until(lambda: len(scripted) == 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_poll_mode_describes_itself() -> None:
    assert describe_change_source(None, Broker()) == {"configured": "poll", "active": "poll"}  # type: ignore[arg-type]
