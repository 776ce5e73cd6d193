"""The demo's stand-in for the appliance: writes replication progress as it does.

Each :meth:`Simulator.step` is one round of the appliance's writers
(docs/appliance-schema.md, "How the appliance writes"):

- every active job gets its ~12 progress columns rewritten, sometimes with the
  values they already hold (a stalled poll); bytes move by the link's
  throughput with some jitter, and each disk row follows the job: the job's
  percentage and its part of the job's bytes (``data.disk_shares``);
- a job of a VM whose VMA cannot be reached (``unreachable``) gets no writes
  at all, so it stalls, until its silence reaches ``vma_timeout`` and the
  appliance fails it with that reason; the VM's next job runs normally;
- a job whose bytes are all across completes: job, disks, one CBT row per
  disk with a new change id, and the context's counters, in one transaction;
- now and then a job fails instead;
- a VM that has been idle for a while starts a new job (incremental once it
  has a successful one), which re-points its disks and adds CBT rows.

Only the contexts it was given are ever read or written, so ``--demo`` against
a shared database cannot touch the appliance's own VMs. Times come from an
injectable clock (naive local time, the appliance's zone).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..store import Store, StoreUnavailable, Writer, placeholders
from ..store.writes import for_engine, insert_row
from ..tasks import raise_if_cancelling
from ..timefmt import parse_db_time
from .data import (
    ENDED_STATUSES,
    ERROR_MESSAGES,
    LINKS,
    SEED_CONTEXT_IDS,
    SETUP_PHASES,
    TRANSFER_PHASE,
    UNREACHABLE_VMS,
    VMA_TIMEOUT_MESSAGE,
    MiB,
    disk_shares,
    export_name,
    for_engine_list,
    job_id_at,
    link_band,
    next_change_id,
    percent,
    to_ms,
    to_s,
)

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

_PHASE_ORDER = [phase[0] for phase in SETUP_PHASES] + [TRANSFER_PHASE[0]]
_PHASES = {phase[0]: phase for phase in (*SETUP_PHASES, TRANSFER_PHASE)}

_CONTEXT_COLUMNS = (
    "c.context_id, c.vm_name, c.vmware_vm_id, c.vm_path, c.vcenter_host, c.datacenter, c.current_status,"
    " c.current_job_id, c.last_successful_job_id, c.last_status_change"
)
_JOB_COLUMNS = (
    "j.status, j.progress_percent, j.current_operation, j.bytes_transferred, j.total_bytes, j.transfer_speed_bps,"
    " j.vma_sync_type, j.vma_current_phase, j.vma_throughput_mbps, j.vma_eta_seconds, j.vma_last_poll_at,"
    " j.updated_at, j.replication_type, j.created_at, j.previous_change_id, j.nbd_export_name"
)
# The appliance poller's progress write: the same ~12 columns every time.
_PROGRESS_UPDATE = (
    "UPDATE replication_jobs SET status = %s, progress_percent = %s, current_operation = %s, bytes_transferred = %s,"
    " total_bytes = %s, transfer_speed_bps = %s, vma_sync_type = %s, vma_current_phase = %s,"
    " vma_throughput_mbps = %s, vma_eta_seconds = %s, vma_last_poll_at = %s, updated_at = %s"
)


@dataclass
class _Disk:
    row_id: int
    disk_id: str
    vmdk_path: str
    capacity: int
    change_id: str
    status: str
    progress: float
    synced: int


@dataclass
class _Job:
    """The progress columns of a job, in ``_PROGRESS_UPDATE`` order, plus what the simulator needs."""

    id: str
    progress: list[Any]
    replication_type: str
    created_at: dt.datetime | None
    previous_change_id: str
    export: str

    @property
    def status(self) -> str:
        return str(self.progress[0])


@dataclass
class _VM:
    context_id: str
    vm_name: str
    vmware_vm_id: str
    vm_path: str
    vcenter_host: str
    datacenter: str
    status: str
    job: _Job | None
    last_successful_job_id: str | None
    last_status_change: dt.datetime | None
    disks: list[_Disk] = field(default_factory=list)


class Simulator:
    """Drives the demo VMs' replication in the database, one :meth:`step` at a time.

    ``context_ids`` are the only contexts it may touch (what ``load_demo``
    returned); with ``keep_seed`` the seed VMs (pgtest1, pgtest2) are left
    exactly as the seed has them. ``failure_rate`` is the chance per step that
    a transferring job fails; an idle VM starts a new job after a random
    ``idle_seconds`` wait, while fewer than ``max_active`` jobs run. The VMs
    named in ``unreachable`` have a VMA that does not answer: their
    transferring job is left alone until ``vma_timeout`` seconds after its
    last poll, then fails (once per VM: the tunnel is back afterwards).
    """

    def __init__(
        self,
        store: Store,
        context_ids: Iterable[str],
        *,
        clock: Clock = dt.datetime.now,
        seed: int | None = None,
        keep_seed: bool = True,
        failure_rate: float = 0.001,
        stall_rate: float = 0.1,
        idle_seconds: tuple[float, float] = (60.0, 240.0),
        max_active: int = 6,
        max_gap: float = 10.0,
        unreachable: Iterable[str] = UNREACHABLE_VMS,
        vma_timeout: float = 900.0,
    ) -> None:
        self.store = store
        self.context_ids = frozenset(context_ids) - (SEED_CONTEXT_IDS if keep_seed else frozenset())
        self.clock = clock
        self.rng = random.Random(seed)
        self.failure_rate = failure_rate
        self.stall_rate = stall_rate
        self.idle_seconds = idle_seconds
        self.max_active = max_active
        self.max_gap = dt.timedelta(seconds=max_gap)
        self.vma_timeout = dt.timedelta(seconds=vma_timeout)
        self._unreachable = set(unreachable)
        self.steps = 0
        self._started: dt.datetime | None = None
        self._idle_until: dict[str, dt.datetime] = {}
        self._speeds: dict[str, int] = {}

    async def run(self, period: float = 2.0) -> None:
        """Call :meth:`step` every ``period`` seconds until cancelled; errors are logged and backed off."""
        log.info("simulator driving %d VMs every %.1fs", len(self.context_ids), period)
        delay = period
        while True:
            try:
                await self.step()
                delay = period
            except StoreUnavailable as exc:
                delay = min(max(delay, period) * 2, 30.0)
                log.warning("simulator: database unavailable (%s); retrying in %.0fs", exc, delay)
            except Exception:
                delay = min(max(delay, period) * 2, 30.0)
                log.exception("simulator step failed; retrying in %.0fs", delay)
            raise_if_cancelling()  # a step's store call may have lost the cancellation (pushsvc/tasks.py)
            await asyncio.sleep(delay)

    async def step(self) -> None:
        """One round of the appliance's writes for the demo VMs."""
        now = to_ms(self.clock())
        if self._started is None:
            self._started = now
        self.steps += 1
        if not self.context_ids:
            return
        vms = await self._read()
        active = 0
        idle: list[tuple[dt.datetime, _VM]] = []
        for vm in vms:
            if vm.job is not None and vm.job.status not in ENDED_STATUSES:
                if await self._advance(vm, vm.job, now):
                    active += 1
            elif vm.job is None and vm.status in ("ready_for_failover", "failed") and vm.disks:
                idle.append((self._idle_deadline(vm), vm))
        for deadline, vm in sorted(idle, key=lambda item: (item[0], item[1].context_id)):
            if active >= self.max_active or deadline > now:
                break
            await self._start_job(vm, now)
            active += 1

    # ---- reading ---------------------------------------------------------

    async def _read(self) -> list[_VM]:
        ids = sorted(self.context_ids)
        marks = placeholders(ids)
        async with self.store.snapshot() as reader:
            rows = await reader.fetch_all(
                f"SELECT {_CONTEXT_COLUMNS}, j.id, {_JOB_COLUMNS} FROM vm_replication_contexts c"
                f" LEFT JOIN replication_jobs j ON j.id = c.current_job_id AND j.vm_context_id = c.context_id"
                f" WHERE c.context_id IN ({marks}) ORDER BY c.context_id",
                ids,
            )
            disk_rows = await reader.fetch_all(
                "SELECT vm_context_id, id, disk_id, vm_dk_path, capacity_bytes, disk_change_id, sync_status,"
                f" sync_progress_percent, bytes_synced FROM vm_disks WHERE vm_context_id IN ({marks})"
                " ORDER BY vm_context_id, id",
                ids,
            )
        vms = {}
        # Unpacked by name, in the order of _CONTEXT_COLUMNS, j.id, _JOB_COLUMNS.
        for (
            context_id,
            vm_name,
            vmware_vm_id,
            vm_path,
            vcenter_host,
            datacenter,
            status,
            _current_job_id,
            last_successful_job_id,
            last_status_change,
            job_id,
            *job_columns,
        ) in rows:
            job = None
            if job_id is not None:
                *progress, replication_type, created_at, previous_change_id, export = job_columns
                created = parse_db_time(created_at)
                job = _Job(job_id, progress, replication_type, created, previous_change_id or "", export or "")
            vms[context_id] = _VM(
                context_id,
                vm_name,
                vmware_vm_id,
                vm_path,
                vcenter_host,
                datacenter,
                status,
                job,
                last_successful_job_id,
                parse_db_time(last_status_change),
            )
        for vm_context_id, *disk in disk_rows:
            vm = vms.get(vm_context_id)
            if vm is not None:
                row_id, disk_id, vmdk, capacity, change_id, status, progress, synced = disk
                vm.disks.append(
                    _Disk(
                        row_id,
                        disk_id,
                        vmdk,
                        int(capacity or 0),
                        change_id or "",
                        status,
                        float(progress or 0),
                        int(synced or 0),
                    )
                )
        return list(vms.values())

    # ---- one job's poll --------------------------------------------------

    async def _advance(self, vm: _VM, job: _Job, now: dt.datetime) -> bool:
        """One poll of an active job; False when it ended in this step."""
        status = job.status
        if status != TRANSFER_PHASE[0]:
            await self._next_phase(vm, job, now)
            return True
        roll = self.rng.random()
        if roll < self.failure_rate:
            await self._fail(vm, job, now)
            return False
        if vm.vm_name in self._unreachable:
            # Nobody polls the VMA: nothing is written, and the job goes stale until the appliance gives up.
            last = parse_db_time(job.progress[10]) or parse_db_time(job.progress[11]) or now
            if now - last < self.vma_timeout:
                return True
            self._unreachable.discard(vm.vm_name)
            seconds = int(self.vma_timeout.total_seconds())
            await self._fail(vm, job, now, VMA_TIMEOUT_MESSAGE.format(seconds=seconds))
            return False
        if roll < self.failure_rate + self.stall_rate / 2:
            # The poller wrote back exactly what it read: nothing changes.
            async with self.store.transaction() as writer:
                await self._write_progress(writer, job.id, job.progress)
            return True
        (_, _, _, done, total, speed, sync_type, phase, throughput, eta, _, updated) = job.progress
        done, total, speed = int(done or 0), int(total or 0), int(speed or 0)
        if roll < self.failure_rate + self.stall_rate:
            # The VMA answered but no bytes moved.
            elapsed = 0.0
        else:
            last = parse_db_time(updated) or now
            elapsed = max(0.0, min(now - last, self.max_gap).total_seconds())
            speed = self._walk_speed(vm.context_id, speed)
            done = min(total, done + int(speed * elapsed))
        if done >= total:
            await self._complete(vm, job, now)
            return False
        if elapsed:
            eta = int((total - done) / speed) if speed else None
            throughput = round(speed / MiB, 2)
        values = [
            status,
            percent(done, total),
            TRANSFER_PHASE[1],
            done,
            total,
            speed,
            sync_type,
            phase,
            throughput,
            eta,
            to_s(now),
            now,
        ]
        async with self.store.transaction() as writer:
            await self._write_progress(writer, job.id, values)
            await self._write_disks(writer, vm, total, done, now)
        return True

    async def _next_phase(self, vm: _VM, job: _Job, now: dt.datetime) -> None:
        # Setup statuses this simulator does not write (provisioning, attaching, ...) go straight to transfer.
        index = _PHASE_ORDER.index(job.status) if job.status in _PHASE_ORDER else len(_PHASE_ORDER) - 2
        status, operation, phase = _PHASES[_PHASE_ORDER[index + 1]]
        (_, _, _, _, total, speed, sync_type, _, throughput, eta, poll, _) = job.progress
        total = int(total or 0)
        if status == TRANSFER_PHASE[0]:
            speed = self._walk_speed(vm.context_id, 0)
            throughput, eta = round(speed / MiB, 2), int(total / speed)
        values = [
            status,
            0.0,
            operation,
            0,
            total,
            int(speed or 0),
            sync_type,
            phase,
            throughput or 0,
            eta,
            to_s(now) if status == TRANSFER_PHASE[0] else poll,
            now,
        ]
        async with self.store.transaction() as writer:
            await self._write_progress(
                writer, job.id, values, {"started_at": now} if status == "initializing" else None
            )
            if status == TRANSFER_PHASE[0]:
                await self._write_disks(writer, vm, total, 0, now)

    def _walk_speed(self, context_id: str, speed: int) -> int:
        """The link's next throughput: a small random walk inside its band."""
        if speed <= 0:
            speed = self._speeds.get(context_id) or 0
        if speed <= 0:
            low, high = LINKS[self.rng.choices(("wan", "lan", "parallel"), (6, 3, 1))[0]]
            speed = int(self.rng.uniform(low, high) * MiB)
        low, high = link_band(speed)
        speed = int(min(high * MiB, max(low * MiB, speed * self.rng.uniform(0.93, 1.07))))
        self._speeds[context_id] = speed
        return speed

    async def _write_progress(
        self, writer: Writer, job_id: str, values: list[Any], extra: dict[str, Any] | None = None
    ) -> None:
        """The appliance poller's write: the ~12 progress columns of one job (plus ``extra`` columns)."""
        extra = extra or {}
        sets = "".join(f", {column} = %s" for column in extra)  # column names are code constants
        args = for_engine_list([*values, *extra.values()], self.store.engine)
        await writer.execute(f"{_PROGRESS_UPDATE}{sets} WHERE id = %s", [*args, job_id])

    async def _write_disks(self, writer: Writer, vm: _VM, total: int, done: int, now: dt.datetime) -> None:
        """Each disk shows the job's percentage and its part of the job's bytes; only changed rows are written."""
        progress = percent(done, total)
        status = "syncing"
        for disk, synced in zip(vm.disks, disk_shares(done, [disk.capacity for disk in vm.disks])):
            if (status, progress, synced) == (disk.status, disk.progress, disk.synced):
                continue
            disk.status, disk.progress, disk.synced = status, progress, synced
            await writer.execute(
                "UPDATE vm_disks SET sync_status = %s, sync_progress_percent = %s, bytes_synced = %s, updated_at = %s"
                " WHERE id = %s",
                for_engine_list([status, progress, synced, now, disk.row_id], self.store.engine),
            )

    # ---- job lifecycle ---------------------------------------------------

    async def _complete(self, vm: _VM, job: _Job, now: dt.datetime) -> None:
        """The job's last poll and the appliance's completion writes, in one transaction."""
        engine = self.store.engine
        total = int(job.progress[4] or 0)
        changes = [next_change_id(disk.change_id, self.rng) for disk in vm.disks]
        shares = disk_shares(total, [disk.capacity for disk in vm.disks])
        duration = int(max(0.0, (now - job.created_at).total_seconds())) if job.created_at else 0
        values = ["completed", 100.0, "Completed", total, total, 0, job.progress[6], "Completed", 0, 0, to_s(now), now]
        async with self.store.transaction() as writer:
            await self._write_progress(
                writer, job.id, values, {"completed_at": now, "change_id": changes[0] if changes else ""}
            )
            for disk, share, change in zip(vm.disks, shares, changes):
                await writer.execute(
                    "UPDATE vm_disks SET sync_status = %s, sync_progress_percent = %s, bytes_synced = %s,"
                    " disk_change_id = %s, updated_at = %s WHERE id = %s",
                    for_engine_list(["synced", 100.0, share, change, now, disk.row_id], engine),
                )
                await insert_row(
                    writer,
                    "cbt_history",
                    for_engine(
                        {
                            "vm_context_id": vm.context_id,
                            "job_id": job.id,
                            "disk_id": disk.disk_id,
                            "change_id": change,
                            "previous_change_id": disk.change_id if job.replication_type == "incremental" else "",
                            "sync_type": job.replication_type,
                            "blocks_changed": -(-share // (64 * 1024)),
                            "bytes_transferred": share,
                            "sync_duration_seconds": duration,
                            "sync_success": 1,
                            "created_at": now,
                        },
                        engine,
                    ),
                )
            await writer.execute(
                "UPDATE vm_replication_contexts SET current_job_id = NULL, current_status = 'ready_for_failover',"
                " successful_jobs = COALESCE(successful_jobs, 0) + 1, last_successful_job_id = %s, last_job_at = %s,"
                " last_status_change = %s, updated_at = %s WHERE context_id = %s",
                for_engine_list([job.id, to_s(now), to_s(now), to_s(now), vm.context_id], engine),
            )
        self._idle_until.pop(vm.context_id, None)
        log.info("simulator: %s completed %s (%s)", vm.vm_name, job.id, job.replication_type)

    async def _fail(self, vm: _VM, job: _Job, now: dt.datetime, timed_out: str | None = None) -> None:
        """The job fails: a reason the VMA reported (a random one), or ``timed_out`` when the VMA went silent."""
        engine = self.store.engine
        vmdk = vm.disks[0].vmdk_path if vm.disks else vm.vm_name
        message = timed_out or self.rng.choice(ERROR_MESSAGES).format(export=job.export, vmdk=vmdk)
        (_, progress, _, done, total, _, sync_type, _, _, _, polled, _) = job.progress
        # A silent VMA was not polled: its last poll stays what it was.
        poll = polled if timed_out else to_s(now)
        values = ["failed", progress, "Failed", done, total, 0, sync_type, "Failed", 0, None, poll, now]
        async with self.store.transaction() as writer:
            await self._write_progress(writer, job.id, values, {"error_message": message, "completed_at": now})
            unfinished = [disk.row_id for disk in vm.disks if disk.status != "synced"]
            for row_id in unfinished:
                await writer.execute(
                    "UPDATE vm_disks SET sync_status = 'failed', updated_at = %s WHERE id = %s",
                    for_engine_list([now, row_id], engine),
                )
            await writer.execute(
                "UPDATE vm_replication_contexts SET current_job_id = NULL, current_status = 'failed',"
                " failed_jobs = COALESCE(failed_jobs, 0) + 1, last_status_change = %s, updated_at = %s"
                " WHERE context_id = %s",
                for_engine_list([to_s(now), to_s(now), vm.context_id], engine),
            )
        self._idle_until.pop(vm.context_id, None)
        log.info("simulator: %s failed %s: %s", vm.vm_name, job.id, message)

    def _idle_deadline(self, vm: _VM) -> dt.datetime:
        deadline = self._idle_until.get(vm.context_id)
        if deadline is None:
            started = self._started if self._started is not None else to_ms(self.clock())
            since = max(vm.last_status_change or started, started)
            deadline = since + dt.timedelta(seconds=self.rng.uniform(*self.idle_seconds))
            self._idle_until[vm.context_id] = deadline
        return deadline

    async def _past_speed(self, writer: Writer, context_id: str) -> int:
        """The VM's link speed as its largest completed job saw it (0 when unknown)."""
        rows = await writer.fetch_all(
            "SELECT total_bytes, started_at, created_at, completed_at FROM replication_jobs"
            " WHERE vm_context_id = %s AND status = 'completed' ORDER BY total_bytes DESC LIMIT 1",
            [context_id],
        )
        if not rows:
            return 0
        [(total, started, created, completed)] = rows
        begin, end = parse_db_time(started) or parse_db_time(created), parse_db_time(completed)
        seconds = (end - begin).total_seconds() if begin and end else 0
        return int(int(total or 0) / seconds) if seconds > 0 else 0

    async def _start_job(self, vm: _VM, now: dt.datetime) -> None:
        """A new job as the appliance creates it: job row, context, disks re-pointed, CBT rows."""
        engine = self.store.engine
        incremental = vm.last_successful_job_id is not None
        kind = "incremental" if incremental else "initial"
        capacity = sum(disk.capacity for disk in vm.disks)
        async with self.store.transaction() as writer:
            if incremental:
                total = int(capacity * self.rng.uniform(0.002, 0.02)) // MiB * MiB or MiB
            else:
                [(largest,)] = await writer.fetch_all(
                    "SELECT MAX(total_bytes) FROM replication_jobs WHERE vm_context_id = %s AND replication_type = %s",
                    [vm.context_id, "initial"],
                )
                total = int(largest or capacity * 0.4)
            if vm.context_id not in self._speeds:
                self._speeds[vm.context_id] = await self._past_speed(writer, vm.context_id)
            job_id = job_id_at(now, self.rng)
            previous = [disk.change_id if incremental else "" for disk in vm.disks]
            status, operation, phase = SETUP_PHASES[0]
            await insert_row(
                writer,
                "replication_jobs",
                for_engine(
                    {
                        "id": job_id,
                        "vm_context_id": vm.context_id,
                        "source_vm_id": vm.vmware_vm_id,
                        "source_vm_name": vm.vm_name,
                        "source_vm_path": vm.vm_path,
                        "v_center_host": vm.vcenter_host,
                        "datacenter": vm.datacenter,
                        "replication_type": kind,
                        "status": status,
                        "progress_percent": 0.0,
                        "current_operation": operation,
                        "bytes_transferred": 0,
                        "total_bytes": total,
                        "transfer_speed_bps": 0,
                        "error_message": "",
                        "change_id": "",
                        "previous_change_id": previous[0] if previous else "",
                        "nbd_export_name": export_name(self.rng),
                        "vma_sync_type": "incremental" if incremental else "full",
                        "vma_current_phase": phase,
                        "vma_throughput_mbps": 0,
                        "created_at": now,
                        "updated_at": now,
                    },
                    engine,
                ),
            )
            await writer.execute(
                "UPDATE vm_replication_contexts SET current_job_id = %s, current_status = 'replicating',"
                " total_jobs_run = COALESCE(total_jobs_run, 0) + 1, last_job_at = %s,"
                " first_job_at = COALESCE(first_job_at, %s), last_status_change = %s, updated_at = %s"
                " WHERE context_id = %s",
                for_engine_list([job_id, to_s(now), to_s(now), to_s(now), to_s(now), vm.context_id], engine),
            )
            await writer.execute(
                "UPDATE vm_disks SET job_id = %s, sync_status = 'pending', sync_progress_percent = 0, bytes_synced = 0,"
                " updated_at = %s WHERE vm_context_id = %s",
                for_engine_list([job_id, now, vm.context_id], engine),
            )
            for disk, previous_change in zip(vm.disks, previous):
                await insert_row(
                    writer,
                    "cbt_history",
                    for_engine(
                        {
                            "vm_context_id": vm.context_id,
                            "job_id": job_id,
                            "disk_id": disk.disk_id,
                            "change_id": "",
                            "previous_change_id": previous_change,
                            "sync_type": kind,
                            "blocks_changed": 0,
                            "bytes_transferred": 0,
                            "sync_duration_seconds": 0,
                            "sync_success": 0,
                            "created_at": now,
                        },
                        engine,
                    ),
                )
        self._idle_until.pop(vm.context_id, None)
        log.info("simulator: %s started %s (%s, %d bytes)", vm.vm_name, job_id, kind, total)
