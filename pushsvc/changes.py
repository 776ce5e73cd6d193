"""Where changes come from: the poll loop alone, or MariaDB's binlog nudging reads of just the VMs that changed.

With ``poller.source: poll`` the poller's own loop is the change source and
nothing here runs. With ``binlog``, :class:`BinlogDriver` runs beside that
loop ("events nudge; reads decide", docs/decisions.md):

- once this instance reads the database (in a cluster only the leader
  does), it checks the requirements (:func:`pushsvc.binlog.check_requirements`).
  When something is missing it logs one line naming it and leaves the poll
  loop in charge at the normal interval; while the database cannot be asked,
  it asks again with backoff;
- otherwise it runs a :class:`~pushsvc.binlog.BinlogSource` and, for each
  change batch, has the poller re-read exactly the VMs the batch names
  (:meth:`Poller.poll_contexts`), or everything when the batch says so (the
  stream (re)connected, a statement on the database, rows it cannot place);
- the poll loop keeps running: at ``poller.interval`` (the safety-net full
  read) while the stream is up, at the normal poll interval while it is not
  (lost, connecting, or this instance a follower). A read that fails hands
  over to the poll loop (``wake``), which reports an unavailable database and
  retries with backoff; the driver waits for its next full read.

The source is started when this instance starts reading the database and
stopped when it stops (a cluster leader that becomes a follower), checked on
every signal and at least once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from .binlog import (
    BinlogCoordinate,
    BinlogRequirements,
    BinlogSource,
    ChangeBatch,
    ContextTargets,
    Signal,
    SourceLost,
    check_requirements,
    covers,
    resolve_contexts,
    visible_snapshot,
)
from .broker import Broker
from .config import DatabaseURL, PollerConfig
from .metrics import Metrics
from .poller import Poller
from .store import Reader, StoreUnavailable

log = logging.getLogger(__name__)

# The poll interval when the binlog is not followed: poll mode's default, or the safety net's if shorter.
NORMAL_POLL_INTERVAL = PollerConfig.interval
ROLE_CHECK = 1.0  # seconds between checks of whether this instance (still) reads the database
FOLLOWER = "a cluster follower: the leader reads the database"
VISIBILITY_TIMEOUT = 2.0  # seconds a batch's reads wait for its commit to become visible, at most


@dataclass(frozen=True)
class ChangeSourceState:
    """What /readyz shows as ``change_source``: the configured source, the one in use, and why they differ."""

    configured: str
    active: str
    reason: str | None = None

    def describe(self) -> dict[str, str]:
        body = {"configured": self.configured, "active": self.active}
        if self.reason:
            body["reason"] = self.reason
        return body


def describe_change_source(driver: BinlogDriver | None, broker: Broker) -> dict[str, str]:
    """The ``change_source`` detail of /readyz, for either configuration."""
    if not broker.reads_database:
        return ChangeSourceState(driver.state.configured if driver else "poll", "none", FOLLOWER).describe()
    if driver is None:
        return ChangeSourceState("poll", "poll").describe()
    return driver.state.describe()


class BinlogDriver:
    """Follows the binlog and turns each change batch into a read of just the VMs it names.

    ``state`` says which source is in use and why; ``requirements`` is the
    start-up check's answer once there is one; ``applied`` is the binlog
    position up to which every batch has been handled (read and published,
    or handed to the poll loop when the read failed). :meth:`wait_until`
    waits for any of them (tests, benchmarks). ``source_options`` go to
    :class:`BinlogSource` (tests shorten its backoff).
    """

    def __init__(
        self,
        poller: Poller,
        broker: Broker,
        url: DatabaseURL,
        config: PollerConfig,
        metrics: Metrics,
        **source_options: Any,
    ) -> None:
        self.poller = poller
        self.broker = broker
        self.url = url
        self.metrics = metrics
        self.safety_interval = config.interval
        self.poll_interval = min(config.interval, NORMAL_POLL_INTERVAL)
        self.backoff_max = config.backoff_max
        self.state = ChangeSourceState("binlog", "poll", "checking the binlog requirements")
        self.requirements: BinlogRequirements | None = None
        self.source: BinlogSource | None = None
        self.source_options = source_options
        self.applied = ""
        self.batches = 0
        self._changed = asyncio.Event()
        self._read_failing = False
        self._visibility_late = False  # a batch was read before its commit was visible (logged once)
        poller.interval = self.poll_interval  # until the stream is up

    async def run(self) -> None:
        """Check the requirements, then follow the binlog while this instance reads the database."""
        try:
            await self._until_reading()
            if not await self._requirements_met():
                return
            while True:
                if not self.broker.reads_database:
                    await self._stop_source(FOLLOWER)
                    await self._until_reading()
                if self.source is None:
                    self._start_source()
                signal = await self._next_signal()
                if signal is not None:
                    await self._handle(signal)
        finally:
            await self._stop_source("stopped")

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Until ``predicate()`` holds, looked at after each change of state, requirements or position."""
        while not predicate():
            await self._changed.wait()  # the event of this moment: _set() replaces it after setting it

    async def wait_for_position(self, position: str) -> None:
        """Until every batch up to binlog ``position`` (a GTID list) has been handled."""
        await self.wait_until(lambda: covers(self.applied, position))

    def _set(self, state: ChangeSourceState | None = None, *, applied: str | None = None) -> None:
        if state is not None:
            self.state = state
        if applied:
            self.applied = applied
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- the steps -----------------------------------------------------------------

    async def _until_reading(self) -> None:
        # No event says so: the broker's role is a property (the cluster's lease), looked at once a second.
        while not self.broker.reads_database:  # noqa: ASYNC110
            await asyncio.sleep(ROLE_CHECK)

    async def _requirements_met(self) -> bool:
        """Ask until the database answers; log once and give up when something is missing."""
        delay = self.poll_interval
        while True:
            report = await self._check()
            self.requirements = report
            if report.answered:
                break
            self._set(ChangeSourceState("binlog", "poll", f"checking the binlog requirements: {report.message}"))
            log.debug("binlog requirements not checked yet (%s); asking again in %.1f s", report.message, delay)
            await asyncio.sleep(delay)
            delay = min(self.backoff_max, delay * 2)
        if not report.ok:
            log.warning("%s: polling every %g s instead (poller.source: binlog)", report.message, self.poll_interval)
            self._set(ChangeSourceState("binlog", "poll", report.message))
            return False
        log.info("binlog source: every requirement is met (%s)", report.server_version)
        self._set()
        return True

    async def _check(self) -> BinlogRequirements:
        if self.url.engine != "mysql":
            return BinlogRequirements(("MariaDB (the database is SQLite, which has no binlog)",))
        return await check_requirements(self.url)

    def _start_source(self) -> None:
        self.source = BinlogSource(self.url, metrics=self.metrics, **self.source_options)
        self.source.start()
        self._set(ChangeSourceState("binlog", "poll", "the binlog stream is connecting"))

    async def _stop_source(self, reason: str) -> None:
        source, self.source = self.source, None
        if source is not None:
            await source.close()
            self.poller.interval = self.poll_interval
            self._set(ChangeSourceState("binlog", "poll", reason))

    async def _next_signal(self) -> Signal | None:
        """The source's next signal, or None after ``ROLE_CHECK`` seconds without one."""
        assert self.source is not None
        # A timeout never loses a signal: the queue hands one over only after its last await.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ROLE_CHECK):
                return await self.source.next()
        return None

    async def _handle(self, signal: Signal) -> None:
        if isinstance(signal, SourceLost):
            # The source logged it (once per outage); the poll loop takes over at the normal interval, now.
            self.poller.interval = self.poll_interval
            self.poller.wake()
            self._set(ChangeSourceState("binlog", "poll", f"binlog stream lost ({signal.reason}); retrying"))
            return
        self.batches += 1
        if self.state.active != "binlog":  # the first batch after (re)connecting: the stream is up
            self.poller.interval = self.safety_interval
            self._set(ChangeSourceState("binlog", "binlog"))
        await self._read(signal)
        self._set(applied=signal.position)

    async def _read(self, batch: ChangeBatch) -> None:
        """Re-read what ``batch`` names and publish; on failure leave it to the poll loop's next full read.

        Usually the batch names its contexts, and their read runs in the
        visibility barrier's own transaction. Rows still to be placed
        (``resolve_contexts``) or a full read need the barrier first, then
        reads of their own.
        """
        try:
            targets = ContextTargets(batch.context_ids, read_all=batch.full_reread is not None)
            if not targets.read_all and not (batch.job_ids or batch.disk_ids or batch.cbt_ids):
                snapshot = None if batch.end is None else functools.partial(self._visible_snapshot, batch.end)
                await self.poller.poll_contexts(targets.context_ids, batch.only_job_updates(), snapshot)
                self._read_failing = False
                return
            if batch.end is not None:
                async with self._visible_snapshot(batch.end):
                    pass
            if not targets.read_all:
                async with self.poller.store.snapshot() as reader:
                    targets = await resolve_contexts(reader, batch)
            if targets.read_all:
                await self.poller.poll_once()
            else:
                await self.poller.poll_contexts(targets.context_ids, batch.only_job_updates())
            self._read_failing = False
        except StoreUnavailable:
            await self._after_full_read()
        except Exception:
            if not self._read_failing:
                log.exception("reading a binlog change batch failed; the poll loop reads everything instead")
            self._read_failing = True
            await self._after_full_read()

    @contextlib.asynccontextmanager
    async def _visible_snapshot(self, end: BinlogCoordinate) -> AsyncIterator[Reader]:
        """A transaction that sees the batch's commits, to read them in (binlog/visibility.py says why)."""
        async with visible_snapshot(self.poller.store, end, VISIBILITY_TIMEOUT) as snapshot:
            self._note_visibility(snapshot.waits)
            yield snapshot.reader

    def _note_visibility(self, waits: int | None) -> None:
        if waits:
            self.metrics.binlog_visibility_waits.inc()
        if waits is None:
            self.metrics.binlog_visibility_timeouts.inc()
            if not self._visibility_late:
                log.warning(
                    "a binlog change was still not visible to reads after %.0f s; reading anyway, and the"
                    " safety-net read will show it (logged once until a change is visible in time)",
                    VISIBILITY_TIMEOUT,
                )
            self._visibility_late = True
        else:
            self._visibility_late = False

    async def _after_full_read(self) -> None:
        """Wake the poll loop and wait for its next successful full read, which covers the batch.

        The poll loop reports an unavailable database and retries with
        backoff; batches arriving meanwhile merge in the source's queue.
        """
        ticks = self.poller.ticks
        self.poller.wake()
        await self.poller.wait_for_tick(ticks + 1)
