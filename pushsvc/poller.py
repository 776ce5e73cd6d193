"""Change detection: one background task reads the database, diffs, publishes.

Each tick reads, in one consistent snapshot, every context joined with its
current job and its last job (one statement) and, when any detail topic is
watched, the job history, disks and CBT rows of the watched VMs (three more
statements, one per table, however many VMs or sockets). Nothing depends on ``updated_at``:
every row a document shows is re-read each tick and compared with what was
last published, so writers that do not bump ``updated_at`` and several
changes within one second are all seen. Only VMs whose rows changed are
rebuilt and diffed; one merge patch per topic per tick is published, and
nothing when nothing a client can see changed.

The poller is the change source of the one-way live path (store -> poller
-> broker -> hub): it reads the topics the broker says are watched, diffs
against the broker's last publication of each, and publishes through the
broker. It never sees the hub or a session.

After each successful read, once its publications are out, the poller
publishes a :class:`~pushsvc.broker.Tick` stamped with the wall-clock time
the read began: the confirmation that REST's freshness rule rests on.

With the binlog change source (:mod:`pushsvc.changes`), the same loop runs
the safety-net full reads, and :meth:`Poller.poll_contexts` re-reads just
the VMs a change batch names, through the same diff, in between. One lock
keeps reads in order: a read never publishes over a newer one.

When the database fails the poller backs off exponentially (up to
``backoff_max``), publishes ``status: unavailable``, and on recovery
``status: ok`` and whatever changed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from . import protocol
from .broker import Broker, Publication, Tick, names_order
from .config import PollerConfig
from .documents import DocumentBuilder
from .metrics import Metrics
from .patch import NO_CHANGE, diff
from .protocol import DASHBOARD_TOPIC, DatabaseStatus, detail_vm_name
from .reads import build_dashboard_entry, build_detail, read_named_state, read_state
from .store import Reader, Store, StoreUnavailable
from .store.rows import Children, ContextWithJob
from .timefmt import utc_now_text

log = logging.getLogger(__name__)


class Poller:
    def __init__(
        self, store: Store, builder: DocumentBuilder, broker: Broker, config: PollerConfig, metrics: Metrics
    ) -> None:
        self.store = store
        self.builder = builder
        self.broker = broker
        self.interval = config.interval
        self.backoff_max = config.backoff_max
        self.metrics = metrics
        self.ticks = 0
        self.database_ok = True
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # the loop waits for its interval and no early tick is asked for
        self._tick_done = asyncio.Condition()
        # Held for each read-diff-publish, so that two (a tick and a batch's read) never interleave.
        self._reading = asyncio.Lock()
        # Dashboard: the raw row and the built entry of each VM, as last published.
        self._dashboard_rows: dict[str, ContextWithJob] = {}
        # The dashboard publication those caches reflect (another one means someone else published).
        self._dashboard_base: Publication | None = None
        self._dashboard_entries: dict[str, dict[str, Any]] = {}
        self._dashboard_order = 0  # Tick.order of the published mapping
        # Detail topics: the raw rows behind each published document.
        self._detail_rows: dict[str, tuple[ContextWithJob | None, Children | None]] = {}

    def wake(self) -> None:
        """Ask for an early tick (the broker's ``on_interest``: a topic waits for its first document)."""
        self._idle.clear()
        self._wake.set()

    async def wait_idle(self) -> None:
        """Until the loop waits for its next interval with no early tick asked for (tests and benchmarks)."""
        await self._idle.wait()

    async def wait_for_tick(self, after: int) -> int:
        """Wait until tick number ``after`` has completed (tests and benchmarks)."""
        async with self._tick_done:
            await self._tick_done.wait_for(lambda: self.ticks >= after)
        return self.ticks

    async def run(self) -> None:
        """Tick forever: every ``interval``, earlier when woken, slower while the database is down."""
        failures = 0
        loop = asyncio.get_running_loop()
        # Early ticks (a new topic waiting for its first document) still keep this gap.
        min_gap = min(self.interval, 0.05)
        while True:
            started = loop.time()
            try:
                await self.poll_once()
                failures = 0
                delay = self.interval
            except StoreUnavailable as exc:
                failures += 1
                self.metrics.poll_errors.inc()
                self._mark_unavailable(str(exc))
                delay = min(self.backoff_max, self.interval * 2 ** min(failures, 16))
            except Exception as exc:  # a bug or a schema problem: log it once, keep serving, retry
                self.metrics.poll_errors.inc()
                if self.last_error != repr(exc):
                    log.exception("poll tick failed (repeats are not logged until a tick succeeds)")
                self.last_error = repr(exc)
                delay = min(self.backoff_max, self.interval * 2 ** min(failures + 1, 16))
                failures += 1
            remaining = delay - (loop.time() - started)
            if remaining > 0:
                if not self._wake.is_set():
                    self._idle.set()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):  # not wait_for: see tasks.py
                        await self._wake.wait()
            self._idle.clear()
            self._wake.clear()
            gap = min_gap - (loop.time() - started)
            if gap > 0:
                await asyncio.sleep(gap)

    async def poll_once(self) -> None:
        """Read, diff and publish once (a no-op without subscribers)."""
        async with self._reading:
            await self._poll_all()

    async def poll_contexts(
        self,
        context_ids: Collection[str],
        job_updates_only: Mapping[str, Collection[str]] | None = None,
        snapshot: Callable[[], AbstractAsyncContextManager[Reader]] | None = None,
    ) -> None:
        """Re-read only the VMs of ``context_ids`` and publish what changed in them (a change batch's read).

        Reads each affected VM's rows as :meth:`poll_once` would (the
        dashboard row, and a watched detail topic's children too) and
        publishes at most one delta per topic. ``job_updates_only`` maps
        the contexts that only updates of job rows named to those jobs' ids:
        when that is the VM's current job (as just read, and as cached), its
        children (job history, disks, CBT) cannot have changed and are taken
        from the cache instead of three more statements. A topic whose published
        document the caches do not describe (first documents still to come
        from the early tick, another cluster leader's last publication, a
        database outage being recovered from) makes it a full read instead.
        ``snapshot`` opens the read's transaction (see :func:`read_named_state`);
        before a full read it is opened and closed first, so that read starts
        after it. Raises :class:`StoreUnavailable` like :meth:`poll_once`.
        """
        async with self._reading:
            watched = self.broker.watched()
            if not watched or not context_ids:
                return
            if not self._caches_describe(watched):
                if snapshot is not None:
                    async with snapshot():
                        pass
                await self._poll_all()
                return
            started = time.perf_counter()
            statements_before = self.store.statements
            ids = set(context_ids)
            detail_topics = {name: vm for name in watched if (vm := detail_vm_name(name)) is not None}
            old_names = {name for name, row in self._dashboard_rows.items() if row.context.context_id in ids}
            for topic, vm_name in detail_topics.items():
                row, _ = self._detail_rows.get(topic, (None, None))
                if row is not None and row.context.context_id in ids:
                    old_names.add(vm_name)
            known = self._known_children(job_updates_only or {})
            names, shown, children = await read_named_state(
                self.store, ids, old_names, detail_topics.values(), known, snapshot
            )
            if DASHBOARD_TOPIC in watched:
                self._patch_dashboard(names, shown)
            for topic, vm_name in detail_topics.items():
                if vm_name in names:
                    row = shown.get(vm_name)
                    self._update_detail(topic, row, None if row is None else children.get(row.context.context_id))
            statements = self.store.statements - statements_before
            self.metrics.poll_queries.inc(statements)
            self.metrics.targeted_reads.inc()
            self.metrics.targeted_read_duration.observe(time.perf_counter() - started)

    def _known_children(
        self, job_updates_only: Mapping[str, Collection[str]]
    ) -> Callable[[ContextWithJob], Children | None]:
        """For a row just read: its cached children when only its current job's row changed since, else None."""
        cached = {
            row.context.context_id: (row, children)
            for row, children in self._detail_rows.values()
            if row is not None and children is not None and row.context.context_id in job_updates_only
        }

        def known(row: ContextWithJob) -> Children | None:
            context = row.context
            before = cached.get(context.context_id)
            if before is None or before[0].context.current_job_id != context.current_job_id:
                return None
            jobs = {str(job) for job in job_updates_only[context.context_id]}
            return before[1] if context.current_job_id is not None and jobs == {str(context.current_job_id)} else None

        return known

    async def _poll_all(self) -> None:
        watched = self.broker.watched()
        if not watched:
            self._forget_unwatched()
            await self._finish_tick()
            return
        started = time.perf_counter()
        statements_before = self.store.statements
        detail_topics = {name: vm for name in watched if (vm := detail_vm_name(name)) is not None}
        read_at = time.time()  # before the snapshot begins: every write committed earlier is in it
        rows, by_name, children = await read_state(self.store, detail_topics.values())
        if not self.database_ok:
            self._mark_available()
        if DASHBOARD_TOPIC in watched:
            self._update_dashboard(rows)
        for topic, vm_name in detail_topics.items():
            row = by_name.get(vm_name)
            self._update_detail(topic, row, None if row is None else children.get(row.context.context_id))
        statements = self.store.statements - statements_before
        self.metrics.poll_queries.inc(statements)
        self.metrics.queries_per_tick.set(statements)
        self.metrics.poll_duration.observe(time.perf_counter() - started)
        self.metrics.ticks.inc()
        self.last_error = None
        self._forget_unwatched()
        order = self._dashboard_order if DASHBOARD_TOPIC in watched else 0
        self.broker.publish_tick(Tick(read_at, len(rows), order))
        await self._finish_tick()

    async def _finish_tick(self) -> None:
        async with self._tick_done:
            self.ticks += 1
            self._tick_done.notify_all()

    def _update_dashboard(self, rows: list[ContextWithJob]) -> None:
        """Diff every VM's entry; publish one patch, and a new mapping in the rows' order.

        The published mapping is never changed afterwards (the broker's
        contract): a tick that changes anything builds a new one, sharing the
        entries that did not change. Its keys follow the database's order
        (``vm_name`` in the database's collation, then ``context_id``), the
        REST list's order, also after VMs are added.
        """
        builder = self.builder
        base = self.broker.last(DASHBOARD_TOPIC)
        fresh = base is None
        if base is None:
            self._dashboard_rows, self._dashboard_entries = {}, {}
        elif base is not self._dashboard_base:
            # Someone else published the last document (a cluster leader before us): diff against it.
            self._dashboard_rows, self._dashboard_entries = {}, base.document["vm_contexts"]
            self._dashboard_order = names_order(self._dashboard_entries)
        old_rows, old_entries = self._dashboard_rows, self._dashboard_entries
        new_rows: dict[str, ContextWithJob] = {}
        entries: dict[str, dict[str, Any]] = {}
        patch: dict[str, Any] = {}
        for row in rows:
            name = row.context.vm_name
            if name in new_rows:
                continue  # same VM name in two vCenters: the first (oldest id) is shown
            new_rows[name] = row
            old_row = old_rows.get(name)
            if old_row == row:  # tuple equality, in C: most rows do not change between ticks
                entries[name] = old_entries[name]
                continue
            entry = build_dashboard_entry(builder, row)
            if name in old_entries:
                change = diff(old_entries[name], entry)
                if change is NO_CHANGE:
                    entries[name] = old_entries[name]
                    continue
                patch[name] = change
            else:
                patch[name] = entry
            entries[name] = entry
        for name in old_entries.keys() - new_rows.keys():
            patch[name] = None
        self._dashboard_rows = new_rows
        if fresh or patch:
            self._dashboard_entries = entries
            self._dashboard_order = names_order(entries)
        if fresh:
            self.broker.publish_snapshot(DASHBOARD_TOPIC, {"vm_contexts": entries})
        elif patch:
            self.broker.publish_delta(DASHBOARD_TOPIC, {"vm_contexts": patch}, {"vm_contexts": entries})
            self.metrics.published.inc()
        self._dashboard_base = self.broker.last(DASHBOARD_TOPIC)

    def _change_entry(
        self, name: str, row: ContextWithJob, entries: dict[str, dict[str, Any]], patch: dict[str, Any]
    ) -> None:
        """Build ``name``'s dashboard entry from ``row`` into ``entries``; its change (if any) into ``patch``."""
        entry = build_dashboard_entry(self.builder, row)
        if name not in entries:
            patch[name] = entry
        else:
            change = diff(entries[name], entry)
            if change is not NO_CHANGE:
                patch[name] = change
        entries[name] = entry

    def _patch_dashboard(self, names: Collection[str], shown: dict[str, ContextWithJob]) -> None:
        """The dashboard's entries for ``names`` only: ``shown`` holds the row now shown under each.

        Like a full read, it publishes a new mapping (a published one is never
        changed); a VM added here goes last until the next full read puts it
        in the database's order, and until then REST reads the list from the
        database (the tick's order no longer matches).
        """
        rows, entries = self._dashboard_rows, dict(self._dashboard_entries)
        patch: dict[str, Any] = {}
        for name in names:
            row = shown.get(name)
            if row is None:
                rows.pop(name, None)
                if entries.pop(name, None) is not None:
                    patch[name] = None
            elif rows.get(name) != row:
                rows[name] = row
                self._change_entry(name, row, entries, patch)
        if patch:
            self._dashboard_entries = entries
            self._dashboard_order = names_order(entries)
            self.broker.publish_delta(DASHBOARD_TOPIC, {"vm_contexts": patch}, {"vm_contexts": entries})
            self.metrics.published.inc()
            self._dashboard_base = self.broker.last(DASHBOARD_TOPIC)

    def _caches_describe(self, watched: Collection[str]) -> bool:
        """Whether the cached rows are those behind every watched topic's published document.

        A detail topic with no document yet is left to the early tick its
        first watcher asked for (``wake``).
        """
        if not self.database_ok:
            return False
        if DASHBOARD_TOPIC in watched:
            base = self.broker.last(DASHBOARD_TOPIC)
            if base is None or base is not self._dashboard_base:
                return False
        for topic in watched:
            if topic != DASHBOARD_TOPIC and self.broker.last(topic) is not None and topic not in self._detail_rows:
                return False
        return True

    def _update_detail(self, topic: str, row: ContextWithJob | None, children: Children | None) -> None:
        previous = self.broker.last(topic)
        raw = (row, children)
        if previous is not None and self._detail_rows.get(topic) == raw:
            return
        self._detail_rows[topic] = raw
        document = None if row is None else build_detail(self.builder, row, children or Children())
        if previous is None:
            self.broker.publish_snapshot(topic, document)
            return
        change = diff(previous.document, document)
        if change is not NO_CHANGE:
            self.broker.publish_delta(topic, change, document)
            self.metrics.published.inc()

    def _forget_unwatched(self) -> None:
        """Drop the cached rows of topics nobody watches any more (all of them once the last watcher left)."""
        watched = set(self.broker.watched())
        for topic in list(self._detail_rows):
            if topic not in watched:
                del self._detail_rows[topic]
        if DASHBOARD_TOPIC not in watched:
            self._dashboard_rows, self._dashboard_entries = {}, {}

    def _mark_unavailable(self, reason: str) -> None:
        self.last_error = reason
        if self.database_ok:
            self.database_ok = False
            log.warning("database unavailable (%s); retrying with backoff", reason)
            self.broker.publish_status(DatabaseStatus(protocol.DATABASE_UNAVAILABLE, utc_now_text()))

    def _mark_available(self) -> None:
        self.database_ok = True
        log.info("database available again")
        self.broker.publish_status(DatabaseStatus(protocol.DATABASE_OK, utc_now_text()))
