"""Demo rows: about a dozen VMs written the way the appliance writes them.

``load_demo`` writes the seed VM (``seed.load_seed``: pgtest1 and pgtest2)
and ten more VMs in a mix of states: initial and incremental syncs in flight,
one job still in its setup phase, VMs ready for failover with completed jobs
and CBT history, one failed VM, one only discovered, and one with more than
ten jobs so the detail's 10-job limit shows. Values follow the "Realistic
values" of docs/appliance-schema.md; all numbers come from ``random.Random(seed)``
and all times are relative to ``now`` (naive local time), so a given seed and
``now`` always produce the same rows.

The vocabulary of job rows (phases, change ids, export names, time precision)
lives here too; the simulator writes with the same words.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

from ..store import Store, Writer
from ..store.writes import for_engine, insert_row, to_db
from .seed import (
    SECOND_CONTEXT,
    SEED_CONTEXT,
    SEED_CURRENT_JOB,
    SEED_EARLIER_JOB,
    load_seed,
)

GiB = 1024**3
MiB = 1024**2
VCENTER = "quad-vcenter-01.quadris.local"
DATACENTER = "DatabanxDC"
DATASTORE = "vsanDatastore"
TOOLS_VERSION = "11.3.5"
DEFAULT_SEED = 20250909

# Written to vm_replication_contexts.last_operation_summary (a column the API
# does not show) so a restarted demo finds the VMs it may drive.
DEMO_MARKER = '{"source":"pushsvc-demo"}'
SEED_CONTEXT_IDS = frozenset({SEED_CONTEXT["context_id"], SECOND_CONTEXT["context_id"]})

# Link throughput bands in MiB/s (the columns' "MB/s"): a WAN tunnel, a LAN,
# parallel NBD streams.
LINKS: dict[str, tuple[float, float]] = {"wan": (10.0, 16.0), "lan": (135.0, 165.0), "parallel": (400.0, 500.0)}

# (status, current_operation, vma_current_phase) of a job before data moves.
SETUP_PHASES: tuple[tuple[str, str, str], ...] = (
    ("pending", "Pending", "Queued"),
    ("initializing", "Initializing", "Initializing"),
    ("analyzing", "Analyzing Disks", "Snapshot"),
    ("ready_for_sync", "Ready for Sync", "Snapshot"),
)
TRANSFER_PHASE = ("replicating", "Transferring Data", "Transfer")
ENDED_STATUSES = frozenset({"completed", "failed", "cancelled", "replication_failed"})

ERROR_MESSAGES = (
    "NBD transfer failed: read from {export}: connection reset by peer (3 retries exhausted)",
    "VMware snapshot creation failed: An error occurred while saving the snapshot: "
    "Failed to quiesce the virtual machine.",
    "migratekit exited with status 1: QueryChangedDiskAreas failed: FileFault: Error caused by file {vmdk}",
    "VMA progress poll timed out after 300s: tunnel to VMA unreachable",
)


# ---- the vocabulary shared with the simulator --------------------------------


def to_ms(moment: dt.datetime) -> dt.datetime:
    """A DATETIME(3) value: the appliance's job and disk times."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def to_s(moment: dt.datetime) -> dt.datetime:
    """A TIMESTAMP value: context times and vma_last_poll_at."""
    return moment.replace(microsecond=0)


def new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def export_name(rng: random.Random) -> str:
    return f"migration-vol-{new_uuid(rng)}"


def job_id_at(moment: dt.datetime, rng: random.Random) -> str:
    """The long job id form, unique even when several jobs start in one second."""
    return f"job-{moment:%Y%m%d-%H%M%S}.{moment.microsecond // 1000:03d}-{rng.getrandbits(24):06x}"


def first_change_id(rng: random.Random) -> str:
    """A disk's first CBT change id: ``52 3c ec 11 9e 2c 4c 3d-87 4a c3 4e 85 f2 ea 95/446``."""
    raw = [f"{rng.getrandbits(8):02x}" for _ in range(16)]
    return f"{' '.join(raw[:8])}-{' '.join(raw[8:])}/{rng.randint(20, 400)}"


def next_change_id(previous: str | None, rng: random.Random) -> str:
    """The change id after ``previous``: same disk tracking id, a later sequence number."""
    prefix, _, sequence = (previous or "").rpartition("/")
    if not prefix or not sequence.isdigit():
        return first_change_id(rng)
    return f"{prefix}/{int(sequence) + rng.randint(3, 80)}"


def link_band(speed_bps: int) -> tuple[float, float]:
    """The throughput band (MiB/s) a transfer speed belongs to."""
    mib = speed_bps / MiB
    return LINKS["wan"] if mib < 60 else LINKS["lan"] if mib < 300 else LINKS["parallel"]


def disk_shares(total: int, capacities: list[int]) -> list[int]:
    """Split a job's bytes over its disks in proportion to their capacity."""
    whole = sum(capacities) or 1
    shares = [total * capacity // whole for capacity in capacities]
    if shares:
        shares[-1] += total - sum(shares)
    return shares


def disk_progress(done: int, shares: list[int]) -> list[int]:
    """Bytes synced per disk when the disks are copied one after another."""
    synced = []
    for share in shares:
        part = max(0, min(share, done))
        synced.append(part)
        done -= share
    return synced


def disk_statuses(synced: list[int], shares: list[int]) -> list[str]:
    """sync_status per disk while a job transfers: done ones synced, the next syncing, the rest pending."""
    statuses, current_found = [], False
    for done, share in zip(synced, shares):
        if done >= share:
            statuses.append("synced")
        elif not current_found:
            statuses.append("syncing")
            current_found = True
        else:
            statuses.append("pending")
    return statuses


def percent(done: int, total: int) -> float:
    return done / total * 100 if total else 0.0


# ---- the demo fleet -----------------------------------------------------------


@dataclass(frozen=True)
class VMSpec:
    name: str
    os_type: str
    cpu_count: int
    memory_mb: int
    disks_gb: tuple[int, ...]
    used: float  # share of the capacity that holds data
    link: str
    completed: int  # completed jobs before the current state
    current: str | None  # "initial", "incremental", "setup", "failed" or None (idle / discovered)
    progress: float = 0.0  # of the current job, 0..1
    networks: tuple[str, ...] = ("VLAN 253 - QUADRIS_CLOUD-DMZ",)
    power_state: str = "poweredOn"


FLEET: tuple[VMSpec, ...] = (
    VMSpec(
        "sql-prod-01",
        "windows",
        8,
        32768,
        (150, 400),
        0.55,
        "lan",
        4,
        "incremental",
        0.35,
        ("VLAN 110 - QUADRIS_PROD-DB", "VLAN 900 - BACKUP"),
    ),
    VMSpec("web-frontend-02", "linux", 2, 4096, (60,), 0.45, "wan", 0, "initial", 0.72),
    VMSpec(
        "exchange-mbx-01",
        "windows",
        8,
        65536,
        (120, 500),
        0.6,
        "parallel",
        0,
        "initial",
        0.08,
        ("VLAN 120 - QUADRIS_MAIL",),
    ),
    VMSpec("file-srv-03", "windows", 4, 8192, (250,), 0.7, "wan", 2, "incremental", 0.91, ("VLAN 130 - QUADRIS_FILE",)),
    VMSpec("app-billing-01", "linux", 4, 16384, (80,), 0.4, "lan", 3, "setup", 0.0, ("VLAN 140 - QUADRIS_APP",)),
    VMSpec("dc-ad-01", "windows", 2, 8192, (60,), 0.5, "wan", 3, None, 0.0, ("VLAN 100 - QUADRIS_CORE",)),
    VMSpec("jenkins-ci-01", "linux", 4, 8192, (100, 200), 0.35, "lan", 1, None, 0.0, ("VLAN 150 - QUADRIS_DEV",)),
    VMSpec(
        "erp-db-02", "linux", 16, 65536, (200, 300), 0.5, "parallel", 14, None, 0.0, ("VLAN 110 - QUADRIS_PROD-DB",)
    ),
    VMSpec("legacy-crm-01", "windows", 2, 4096, (40,), 0.6, "wan", 2, "failed", 0.37, ("VLAN 140 - QUADRIS_APP",)),
    VMSpec(
        "k8s-worker-04", "linux", 4, 16384, (40,), 0.3, "wan", 0, None, 0.0, ("VLAN 150 - QUADRIS_DEV",), "poweredOff"
    ),
)


async def load_demo(store: Store, now: dt.datetime | None = None, *, seed: int = DEFAULT_SEED) -> set[str]:
    """Write the seed VMs and the demo fleet; return the context ids written.

    ``now`` is the appliance's local (naive) time; default: this machine's.
    """
    now = to_ms(now or dt.datetime.now())
    rng = random.Random(seed)
    await load_seed(store)
    job_ids: set[str] = {str(SEED_EARLIER_JOB["id"]), str(SEED_CURRENT_JOB["id"])}
    written: set[str] = {str(context_id) for context_id in SEED_CONTEXT_IDS}
    async with store.transaction() as writer:
        for spec in FLEET:
            builder = _VMBuilder(spec, rng, now, job_ids)
            written.add(await builder.write(writer, store.engine))
    return written


class _VMBuilder:
    """The rows of one demo VM: its jobs laid out backwards in time from ``now``."""

    def __init__(self, spec: VMSpec, rng: random.Random, now: dt.datetime, job_ids: set[str]) -> None:
        self.spec = spec
        self.rng = rng
        self.now = now
        self.job_ids = job_ids
        self.vm_id = "42" + new_uuid(rng)[2:]
        self.speed = rng.uniform(*LINKS[spec.link]) * MiB  # bytes/s
        self.capacities = [gb * GiB for gb in spec.disks_gb]
        self.used = sum(int(c * spec.used * rng.uniform(0.9, 1.1)) // MiB * MiB for c in self.capacities)
        self.folder = new_uuid(rng)

    def _jobs(self) -> list[dict[str, Any]]:
        """Job plans, oldest first: type, bytes, outcome and times."""
        spec, rng = self.spec, self.rng
        kinds = ["initial"] + ["incremental"] * max(0, spec.completed - 1) if spec.completed else []
        plans: list[dict[str, Any]] = [{"type": kind, "outcome": "completed"} for kind in kinds]
        if spec.current in ("initial", "incremental", "setup", "failed"):
            if spec.current in ("initial", "incremental"):
                kind = spec.current
            else:
                kind = "incremental" if plans else "initial"
            plans.append({"type": kind, "outcome": spec.current if spec.current in ("setup", "failed") else "active"})
        for plan in plans:
            changed = int(self.used * rng.uniform(0.005, 0.04)) // MiB * MiB
            plan["total"] = self.used if plan["type"] == "initial" else changed
            plan["setup"] = rng.uniform(20, 60)
        # Lay the jobs out backwards from now.
        anchor: dt.datetime = self.now
        for index in range(len(plans) - 1, -1, -1):
            plan = plans[index]
            if plan["outcome"] == "active":
                done = int(plan["total"] * spec.progress)
                plan["done"] = done
                plan["created"] = anchor - dt.timedelta(seconds=plan["setup"] + done / self.speed)
            elif plan["outcome"] == "setup":
                plan["done"] = 0
                plan["created"] = anchor - dt.timedelta(seconds=rng.uniform(3, 8))
            else:
                if index == len(plans) - 1:
                    anchor -= dt.timedelta(minutes=rng.uniform(10, 180))
                plan["ended"] = anchor
                fraction = spec.progress if plan["outcome"] == "failed" else 1.0
                plan["done"] = int(plan["total"] * fraction)
                plan["created"] = anchor - dt.timedelta(seconds=plan["setup"] + plan["done"] / self.speed)
            plan["created"] = to_ms(plan["created"])
            anchor = plan["created"] - dt.timedelta(hours=rng.uniform(2, 8))
        for plan in plans:
            plan["id"] = self._job_id(plan["created"])
        return plans

    def _job_id(self, created: dt.datetime) -> str:
        job_id = f"job-{created:%Y%m%d-%H%M%S}"
        if job_id in self.job_ids:
            job_id = job_id_at(created, self.rng)
        self.job_ids.add(job_id)
        return job_id

    async def write(self, writer: Writer, engine: str) -> str:
        spec, rng, now = self.spec, self.rng, self.now
        plans = self._jobs()
        created = to_s(plans[0]["created"]) if plans else to_s(now - dt.timedelta(days=rng.uniform(1, 3)))
        context_id = f"ctx-{spec.name}-{created:%Y%m%d-%H%M%S}"
        context = {
            "context_id": context_id,
            "vm_name": spec.name,
            "vmware_vm_id": self.vm_id,
            "vm_path": f"/{DATACENTER}/vm/{spec.name}",
            "vcenter_host": VCENTER,
            "datacenter": DATACENTER,
            "current_status": "discovered",
            "total_jobs_run": len(plans),
            "successful_jobs": sum(plan["outcome"] == "completed" for plan in plans),
            "failed_jobs": sum(plan["outcome"] == "failed" for plan in plans),
            "cpu_count": spec.cpu_count,
            "memory_mb": spec.memory_mb,
            "os_type": spec.os_type,
            "power_state": spec.power_state,
            "vm_tools_version": TOOLS_VERSION,
            "created_at": created,
            "first_job_at": to_s(plans[0]["created"]) if plans else None,
            "last_status_change": created,
            "last_operation_summary": DEMO_MARKER,
        }
        # As load_seed: inserted without updated_at and the job links, set below.
        await insert_row(writer, "vm_replication_contexts", for_engine(context, engine))

        disks = self._disks(context_id) if plans else []  # discovered VMs have no disk rows yet
        change_ids = ["" for _ in disks]
        cbt_rows: list[dict[str, Any]] = []
        last_success = None
        for plan in plans:
            job, previous = self._job(context_id, plan, change_ids)
            await insert_row(writer, "replication_jobs", for_engine(job, engine))
            shares = disk_shares(plan["total"], self.capacities)
            synced = disk_progress(plan["done"], shares)
            # A row per disk when the job starts, and one with the new change id when it completes.
            for index, disk in enumerate(disks):
                cbt_rows.append(self._cbt(context_id, plan, disk["disk_id"], "", previous[index], 0, plan["created"]))
            if plan["outcome"] == "completed":
                for index, disk in enumerate(disks):
                    change_ids[index] = next_change_id(previous[index], rng)
                    cbt_rows.append(
                        self._cbt(
                            context_id,
                            plan,
                            disk["disk_id"],
                            change_ids[index],
                            previous[index],
                            shares[index],
                            plan["ended"],
                        )
                    )
            if plan["outcome"] == "completed":
                last_success = plan["id"]
            self._point_disks(disks, plan, shares, synced, change_ids)

        for disk in disks:
            await insert_row(writer, "vm_disks", for_engine(disk, engine))
        for row in cbt_rows:
            await insert_row(writer, "cbt_history", for_engine(row, engine))

        status, current, changed, last_job = "discovered", None, created, None
        if plans:
            last = plans[-1]
            if last["outcome"] in ("active", "setup"):
                status, current = "replicating", last["id"]
                changed = last_job = to_s(last["created"])
            else:
                status = "failed" if last["outcome"] == "failed" else "ready_for_failover"
                changed = last_job = to_s(last["ended"])
        await writer.execute(
            "UPDATE vm_replication_contexts SET current_status = %s, current_job_id = %s, last_successful_job_id = %s,"
            " last_job_at = %s, last_status_change = %s, updated_at = %s WHERE context_id = %s",
            for_engine_list([status, current, last_success, last_job, changed, changed, context_id], engine),
        )
        return context_id

    def _job(self, context_id: str, plan: dict[str, Any], change_ids: list[str]) -> tuple[dict[str, Any], list[str]]:
        spec, rng = self.spec, self.rng
        previous = list(change_ids) if plan["type"] == "incremental" else ["" for _ in change_ids]
        total, done, created = plan["total"], plan["done"], plan["created"]
        started = to_ms(created + dt.timedelta(milliseconds=rng.randint(250, 900)))
        export = export_name(rng)
        job = {
            "id": plan["id"],
            "vm_context_id": context_id,
            "source_vm_id": self.vm_id,
            "source_vm_name": spec.name,
            "source_vm_path": f"/{DATACENTER}/vm/{spec.name}",
            "v_center_host": VCENTER,
            "datacenter": DATACENTER,
            "replication_type": plan["type"],
            "total_bytes": total,
            "error_message": "",
            "change_id": "",
            "previous_change_id": previous[0] if previous else "",
            "nbd_export_name": export,
            "vma_sync_type": "full" if plan["type"] == "initial" else "incremental",
            "created_at": created,
            "started_at": started,
        }
        outcome = plan["outcome"]
        if outcome == "active":
            poll = self.now - dt.timedelta(seconds=rng.uniform(0.2, 1.8))
            low, high = LINKS[self.spec.link]
            speed = int(min(high * MiB, max(low * MiB, self.speed * rng.uniform(0.93, 1.07))))
            job.update(
                status=TRANSFER_PHASE[0],
                current_operation=TRANSFER_PHASE[1],
                vma_current_phase=TRANSFER_PHASE[2],
                progress_percent=percent(done, total),
                bytes_transferred=done,
                transfer_speed_bps=speed,
                vma_throughput_mbps=round(speed / MiB, 2),
                vma_eta_seconds=int((total - done) / speed),
                vma_last_poll_at=to_s(poll),
                updated_at=to_ms(poll),
            )
        elif outcome == "setup":
            status, operation, phase = SETUP_PHASES[2]
            job.update(
                status=status,
                current_operation=operation,
                vma_current_phase=phase,
                progress_percent=0.0,
                bytes_transferred=0,
                transfer_speed_bps=0,
                vma_throughput_mbps=0,
                updated_at=to_ms(self.now),
            )
        elif outcome == "failed":
            message = rng.choice(ERROR_MESSAGES).format(export=export, vmdk=self._vmdk(0))
            job.update(
                status="failed",
                current_operation="Failed",
                vma_current_phase="Failed",
                error_message=message,
                progress_percent=percent(done, total),
                bytes_transferred=done,
                transfer_speed_bps=0,
                vma_throughput_mbps=0,
                updated_at=to_ms(plan["ended"]),
                completed_at=to_ms(plan["ended"]),
                vma_last_poll_at=to_s(plan["ended"]),
            )
        else:
            job.update(
                status="completed",
                current_operation="Completed",
                vma_current_phase="Completed",
                progress_percent=100.0,
                bytes_transferred=total,
                transfer_speed_bps=0,
                vma_throughput_mbps=0,
                vma_eta_seconds=0,
                vma_last_poll_at=to_s(plan["ended"]),
                updated_at=to_ms(plan["ended"]),
                completed_at=to_ms(plan["ended"]),
            )
        return job, previous

    def _vmdk(self, index: int) -> str:
        suffix = f"_{index}" if index else ""
        return f"[{DATASTORE}] {self.folder}/{self.spec.name}{suffix}.vmdk"

    def _disks(self, context_id: str) -> list[dict[str, Any]]:
        spec, rng = self.spec, self.rng
        network = json.dumps(
            [
                {
                    "name": "",
                    "type": "",
                    "connected": spec.power_state == "poweredOn",
                    "mac_address": "00:50:56:" + ":".join(f"{rng.getrandbits(8):02x}" for _ in range(3)),
                    "label": f"Network adapter {number}",
                    "network_name": name,
                    "adapter_type": "vmxnet3" if spec.os_type == "linux" or number == 1 else "e1000e",
                }
                for number, name in enumerate(spec.networks, start=1)
            ],
            separators=(",", ":"),
        )
        disks = []
        for index, gb in enumerate(spec.disks_gb):
            disks.append(
                {
                    "vm_context_id": context_id,
                    "job_id": None,
                    "disk_id": f"disk-{2000 + index}",
                    "vm_dk_path": self._vmdk(index),
                    "size_gb": gb,
                    "datastore": DATASTORE,
                    "unit_number": index,
                    "label": f"Hard disk {index + 1}",
                    "capacity_bytes": gb * GiB,
                    "provisioning_type": "thin",
                    "ossea_volume_id": rng.randint(100, 999),
                    "cpu_count": spec.cpu_count,
                    "memory_mb": spec.memory_mb,
                    "os_type": spec.os_type,
                    "vm_tools_version": "",
                    "network_config": network,
                    "display_name": "",
                    "annotation": "",
                    "power_state": spec.power_state,
                    "vmware_uuid": self.vm_id,
                    "disk_change_id": "",
                    "sync_status": "pending",
                    "sync_progress_percent": 0.0,
                    "bytes_synced": 0,
                    "created_at": None,
                    "updated_at": None,
                }
            )
        return disks

    def _point_disks(
        self,
        disks: list[dict[str, Any]],
        plan: dict[str, Any],
        shares: list[int],
        synced: list[int],
        change_ids: list[str],
    ) -> None:
        """The disk rows as the plan's job leaves them (the last job's state is what stays)."""
        ended = plan["outcome"] in ("completed", "failed")
        if ended:
            moment = plan["ended"]
        else:
            moment = self.now - dt.timedelta(seconds=1) if plan["outcome"] == "active" else plan["created"]
        transfer = disk_statuses(synced, shares)
        for index, disk in enumerate(disks):
            if disk["created_at"] is None:
                disk["created_at"] = to_ms(plan["created"] + dt.timedelta(milliseconds=8 + index))
            done, share = synced[index], shares[index]
            if plan["outcome"] == "completed":
                status = "synced"
            elif plan["outcome"] == "failed":
                status = "synced" if done >= share else "failed"
            elif plan["outcome"] == "active":
                status = transfer[index]
            else:
                status = "pending"
            disk.update(
                job_id=plan["id"],
                disk_change_id=change_ids[index],
                sync_status=status,
                sync_progress_percent=percent(done, share),
                bytes_synced=done,
                updated_at=to_ms(moment + dt.timedelta(milliseconds=14 + index)),
            )

    def _cbt(
        self,
        context_id: str,
        plan: dict[str, Any],
        disk_id: str,
        change_id: str,
        previous: str,
        nbytes: int,
        moment: dt.datetime,
    ) -> dict[str, Any]:
        success = bool(change_id)
        return {
            "vm_context_id": context_id,
            "job_id": plan["id"],
            "disk_id": disk_id,
            "change_id": change_id,
            "previous_change_id": previous,
            "sync_type": plan["type"],
            "blocks_changed": -(-nbytes // (64 * 1024)) if success else 0,
            "bytes_transferred": nbytes if success else 0,
            "sync_duration_seconds": int((moment - plan["created"]).total_seconds()) if success else 0,
            "sync_success": 1 if success else 0,
            "created_at": to_ms(moment + dt.timedelta(milliseconds=25)),
        }


def for_engine_list(values: list[Any], engine: str) -> list[Any]:
    """Statement arguments in the engine's time representation."""
    return [to_db(value, engine) for value in values]
