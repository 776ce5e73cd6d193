"""The key property: every client's document equals a fresh REST read after each poll.

A seeded, reproducible random sequence of realistic writes (the way the
appliance writes: progress rewrites, identical rewrites, status transitions,
job creation and completion or failure with their context updates, disk
re-pointing, CBT inserts, several context updates within one second, writes
that leave updated_at alone, contexts created and cascade-deleted, a past
job's reason rewritten, old jobs deleted, jobs created in the same
millisecond) is applied to MariaDB while several clients watch; one joins
mid-stream and one drops and resumes with ``since``. The dashboard's
``last_job`` (issue 11) is compared with ``?include=last_job``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from pushsvc.keys import hub_key, poller_key
from pushsvc.patch import diff
from pushsvc.store.writes import insert_row

from ..helpers import rest_dashboard, rest_detail
from ..wsclient import LiveClient

SEED = 20261128
WRITES = 320
TERMINAL = ("completed", "failed")
FAILURES = (
    "NBD export vanished",
    "VMware snapshot creation failed: Failed to quiesce the virtual machine.",
    "QueryChangedDiskAreas failed: FileFault: Error caused by file {vm}.vmdk",
)
ACTIVE_STEPS = (
    "pending",
    "initializing",
    "analyzing",
    "provisioning",
    "attaching",
    "configuring",
    "ready_for_sync",
    "replicating",
)


@dataclass
class VM:
    context_id: str
    name: str
    disks: list[str] = field(default_factory=list)
    current_job: str | None = None
    jobs: int = 0
    ended: list[str] = field(default_factory=list)  # ended jobs, oldest first
    last_created: dt.datetime | None = None


class Appliance:
    """Writes to the database the way the migration appliance does."""

    def __init__(self, store, rng: random.Random) -> None:
        self.store = store
        self.rng = rng
        self.vms: dict[str, VM] = {}
        self.clock = dt.datetime(2025, 9, 9, 11, 0, 0)
        self.serial = 0

    def tick(self, seconds: float = 0.0) -> dt.datetime:
        self.clock += dt.timedelta(seconds=seconds)
        return self.clock

    def now_ms(self) -> dt.datetime:
        return self.clock.replace(microsecond=self.rng.randrange(0, 1000) * 1000)

    def now_s(self) -> dt.datetime:
        return self.clock.replace(microsecond=0)

    async def create_vm(self, writer) -> None:
        self.serial += 1
        name = (
            self.rng.choice(["pg", "web", "sql", "dc", "file", "app"])
            + f"-{self.serial:03d}"
            + self.rng.choice(["", " (old)", "-ü"])
        )
        vm = VM(context_id=f"ctx-{self.serial:03d}-{self.rng.randrange(10**6)}", name=name)
        await insert_row(
            writer,
            "vm_replication_contexts",
            {
                "context_id": vm.context_id,
                "vm_name": name,
                "vmware_vm_id": f"4205-{self.serial:04d}",
                "vm_path": f"/DatabanxDC/vm/{name}",
                "vcenter_host": "quad-vcenter-01.quadris.local",
                "datacenter": "DatabanxDC",
                "cpu_count": self.rng.choice([2, 4, 8]),
                "memory_mb": self.rng.choice([4096, 8192, 16384]),
                "os_type": self.rng.choice(["windows", "linux"]),
                "power_state": "poweredOn",
                "vm_tools_version": "11.3.5",
                "created_at": self.now_s(),
                "updated_at": self.now_s(),
                "last_status_change": self.now_s(),
            },
        )
        for index in range(self.rng.choice([1, 1, 2])):
            disk = f"disk-{2000 + index}"
            vm.disks.append(disk)
            await insert_row(
                writer,
                "vm_disks",
                {
                    "vm_context_id": vm.context_id,
                    "disk_id": disk,
                    "vm_dk_path": f"[vsanDatastore] x/{name}_{index}.vmdk",
                    "size_gb": 102,
                    "capacity_bytes": 109521666048,
                    "label": f"Hard disk {index + 1}",
                    "datastore": "vsanDatastore",
                    "provisioning_type": "thin",
                    "unit_number": index,
                    "created_at": self.now_ms(),
                    "updated_at": self.now_ms(),
                },
            )
        self.vms[vm.context_id] = vm

    async def start_job(self, writer, vm: VM) -> None:
        vm.jobs += 1
        job_id = f"job-{vm.context_id[4:]}-{vm.jobs:03d}"
        kind = "initial" if vm.jobs == 1 else "incremental"
        # Now and then in the same millisecond as the VM's previous job: the id breaks the tie.
        created = vm.last_created if vm.last_created and self.rng.random() < 0.25 else self.now_ms()
        vm.last_created = created
        await insert_row(
            writer,
            "replication_jobs",
            {
                "id": job_id,
                "vm_context_id": vm.context_id,
                "source_vm_id": "x",
                "source_vm_name": vm.name,
                "source_vm_path": f"/DatabanxDC/vm/{vm.name}",
                "v_center_host": "quad-vcenter-01.quadris.local",
                "datacenter": "DatabanxDC",
                "replication_type": kind,
                "status": "pending",
                "current_operation": "Initializing",
                "total_bytes": self.rng.randrange(1, 40) * 2**30,
                "nbd_export_name": f"migration-vol-{job_id}",
                "created_at": created,
                "updated_at": self.now_ms(),
            },
        )
        await writer.execute(
            "UPDATE vm_replication_contexts SET current_job_id = %s, current_status = 'replicating', "
            "total_jobs_run = total_jobs_run + 1, last_job_at = %s, first_job_at = COALESCE(first_job_at, %s), "
            "last_status_change = %s WHERE context_id = %s",
            [job_id, self.now_s(), self.now_s(), self.now_s(), vm.context_id],
        )
        await writer.execute(
            "UPDATE vm_disks SET job_id = %s, sync_status = 'pending', sync_progress_percent = 0, bytes_synced = 0 "
            "WHERE vm_context_id = %s",
            [job_id, vm.context_id],
        )
        for disk in vm.disks:
            await insert_row(
                writer,
                "cbt_history",
                {
                    "vm_context_id": vm.context_id,
                    "job_id": job_id,
                    "disk_id": disk,
                    "change_id": "" if kind == "initial" else f"52 3c ec 11/{self.rng.randrange(1000)}",
                    "sync_type": kind,
                    "created_at": self.now_ms(),
                },
            )
        vm.current_job = job_id

    async def progress(self, writer, vm: VM, identical: bool) -> None:
        rows = await writer.fetch_all(
            "SELECT status, progress_percent, bytes_transferred, total_bytes, updated_at FROM replication_jobs WHERE id = %s",
            [vm.current_job],
        )
        status, percent, done, total, updated = rows[0]
        if not identical:
            status = "replicating" if self.rng.random() < 0.7 else self.rng.choice(ACTIVE_STEPS)
            done = min(total, done + self.rng.randrange(0, 2**28))
            percent = done * 100 / total
            updated = self.now_ms()
        speed = 0 if identical else self.rng.randrange(10_000_000, 16_000_000)
        await writer.execute(
            "UPDATE replication_jobs SET status = %s, progress_percent = %s, bytes_transferred = %s, "
            "current_operation = %s, vma_current_phase = %s, vma_sync_type = %s, "
            "transfer_speed_bps = CASE WHEN %s THEN transfer_speed_bps ELSE %s END, "
            "vma_throughput_mbps = CASE WHEN %s THEN vma_throughput_mbps ELSE %s END, "
            "vma_eta_seconds = CASE WHEN %s THEN vma_eta_seconds ELSE %s END, updated_at = %s WHERE id = %s",
            [
                status,
                percent,
                done,
                "Transferring Data",
                "Transfer",
                "full",
                identical,
                speed,
                identical,
                round(speed / 2**20, 2),
                identical,
                (total - done) // max(speed, 1),
                updated,
                vm.current_job,
            ],
        )

    async def disk_progress(self, writer, vm: VM) -> None:
        # Raw SQL that does not touch updated_at.
        await writer.execute(
            "UPDATE vm_disks SET sync_status = 'syncing', sync_progress_percent = %s, bytes_synced = %s "
            "WHERE vm_context_id = %s AND disk_id = %s",
            [self.rng.random() * 100, self.rng.randrange(2**34), vm.context_id, self.rng.choice(vm.disks)],
        )

    async def finish_job(self, writer, vm: VM, success: bool) -> None:
        await writer.execute(
            "UPDATE replication_jobs SET status = %s, progress_percent = CASE WHEN %s THEN 100 ELSE progress_percent END, "
            "error_message = %s, completed_at = %s, updated_at = %s WHERE id = %s",
            [
                "completed" if success else "failed",
                success,
                "" if success else self.rng.choice(FAILURES).format(vm=vm.name),
                self.now_ms(),
                self.now_ms(),
                vm.current_job,
            ],
        )
        if success:
            await writer.execute(
                "UPDATE vm_replication_contexts SET current_job_id = NULL, current_status = 'ready_for_failover', "
                "successful_jobs = successful_jobs + 1, last_successful_job_id = %s, last_status_change = %s "
                "WHERE context_id = %s",
                [vm.current_job, self.now_s(), vm.context_id],
            )
            await writer.execute(
                "UPDATE vm_disks SET sync_status = 'completed', sync_progress_percent = 100 WHERE vm_context_id = %s",
                [vm.context_id],
            )
        else:
            await writer.execute(
                "UPDATE vm_replication_contexts SET current_job_id = NULL, current_status = 'failed', "
                "failed_jobs = failed_jobs + 1, last_status_change = %s WHERE context_id = %s",
                [self.now_s(), vm.context_id],
            )
        vm.ended.append(vm.current_job)
        vm.current_job = None

    async def rewrite_reason(self, writer, vm: VM) -> None:
        """A raw-SQL writer amends an ended job's error_message and touches nothing else."""
        job_id = self.rng.choice(vm.ended[-2:])
        await writer.execute(
            "UPDATE replication_jobs SET error_message = %s WHERE id = %s",
            [f"{self.rng.choice(FAILURES).format(vm=vm.name)} (retry {self.rng.randrange(9)})", job_id],
        )

    async def delete_job(self, writer, vm: VM) -> None:
        """An ended job is deleted (cascading to its CBT rows and disk links)."""
        job_id = vm.ended.pop(self.rng.randrange(len(vm.ended)))
        await writer.execute("DELETE FROM replication_jobs WHERE id = %s", [job_id])

    async def same_second_context_updates(self, writer, vm: VM) -> None:
        """Several counter changes that all carry the same whole-second updated_at."""
        pinned = self.now_s()
        for _ in range(self.rng.randrange(2, 4)):
            await writer.execute(
                "UPDATE vm_replication_contexts SET cpu_count = %s, power_state = %s, updated_at = %s WHERE context_id = %s",
                [self.rng.choice([2, 4, 8]), self.rng.choice(["poweredOn", "poweredOff"]), pinned, vm.context_id],
            )

    async def delete_vm(self, writer, vm: VM) -> None:
        await writer.execute("DELETE FROM vm_replication_contexts WHERE context_id = %s", [vm.context_id])
        del self.vms[vm.context_id]

    async def random_write(self) -> str:
        """One realistic write (its own transaction, like the appliance's writers)."""
        rng = self.rng
        self.tick(rng.choice([0, 0, 0.3, 1, 2]))
        active = [vm for vm in self.vms.values() if vm.current_job]
        idle = [vm for vm in self.vms.values() if not vm.current_job]
        ended = [vm for vm in self.vms.values() if vm.ended]
        choices = (
            ["progress"] * 8 + ["identical"] * 3 + ["disk"] * 2 + ["same_second"] * 2 + ["start"] * 2 + ["finish"] * 2
        )
        choices += ["reason", "drop_job"] if ended else []
        choices += ["create"] if len(self.vms) < 9 else []
        choices += ["delete"] if len(self.vms) > 4 else []
        kind = rng.choice(choices)
        async with self.store.transaction() as writer:
            if kind == "create" or not self.vms:
                await self.create_vm(writer)
                return "create"
            if kind in ("progress", "identical", "finish") and active:
                vm = rng.choice(active)
                if kind == "finish":
                    await self.finish_job(writer, vm, success=rng.random() < 0.8)
                else:
                    await self.progress(writer, vm, identical=kind == "identical")
                return kind
            if kind == "start" and idle:
                await self.start_job(writer, rng.choice(idle))
                return kind
            if kind in ("reason", "drop_job"):
                vm = rng.choice(ended)
                await (self.rewrite_reason if kind == "reason" else self.delete_job)(writer, vm)
                return kind
            vm = rng.choice(list(self.vms.values()))
            if kind == "delete":
                await self.delete_vm(writer, vm)
            elif kind == "same_second":
                await self.same_second_context_updates(writer, vm)
            elif vm.disks:
                await self.disk_progress(writer, vm)
            return kind


async def assert_converged(app, client, auth_headers, clients: list[LiveClient]) -> None:
    hub = app[hub_key]
    dashboard = await rest_dashboard(client, auth_headers)
    details: dict[str, object] = {}
    for live in clients:
        await live.catch_up(hub)
        for topic in live.docs:
            if topic == "vm-contexts":
                assert live.document(topic) == dashboard, diff(dashboard, live.document(topic))
            else:
                name = topic.split("/", 1)[1]
                if name not in details:
                    details[name] = await rest_detail(client, auth_headers, name)
                document = live.docs[topic]
                actual = None if document is None else live.document(topic)
                assert actual == details[name], (topic, diff(details[name], actual))


async def subscribe_all(app, live: LiveClient, topics, since=None) -> None:
    for topic in topics:
        extra = {"since": {"epoch": live.epoch, "seq": since[topic]}} if since else {}
        await live.send({"type": "subscribe", "topic": topic, **extra})
    await live.send({"type": "ping", "id": "subscribed"})
    await live.expect("pong")
    await app[poller_key].poll_once()


async def run_convergence(app, client, token, auth_headers, settle) -> dict[str, int]:
    """The property, whatever the change source: ``settle()`` returns once every write so far is published.

    Clients are compared with REST after each burst of writes, and again
    after a client joins or resumes (which makes the poller read everything,
    so the comparison before it checks what the change source alone did).
    Returns how many writes of each kind were made.
    """
    from pushsvc.keys import store_key

    appliance = Appliance(app[store_key], random.Random(SEED))
    async with appliance.store.transaction() as writer:
        for _ in range(6):
            await appliance.create_vm(writer)
        for vm in list(appliance.vms.values())[:4]:
            await appliance.start_job(writer, vm)
    await settle()
    names = [vm.name for vm in appliance.vms.values()]
    detail_topics = [f"vm-context/{name}" for name in names[:4]] + ["vm-context/app-007", "vm-context/web-008 (old)"]

    dashboard_only = await LiveClient.connect(client, token)
    everything = await LiveClient.connect(client, token)
    dropper = await LiveClient.connect(client, token, header=False)
    await subscribe_all(app, dashboard_only, ["vm-contexts"])
    await subscribe_all(app, everything, ["vm-contexts", *detail_topics])
    await subscribe_all(app, dropper, ["vm-contexts", detail_topics[0]])
    clients = [dashboard_only, everything, dropper]
    await assert_converged(app, client, auth_headers, clients)

    kinds: dict[str, int] = {}
    writes = 0
    late_joiner = None
    dropped_state = None
    while writes < WRITES:
        for _ in range(appliance.rng.randrange(1, 5)):
            kind = await appliance.random_write()
            kinds[kind] = kinds.get(kind, 0) + 1
            writes += 1
        await settle()
        await assert_converged(app, client, auth_headers, clients)
        joined = False
        if dropped_state is None and writes >= 100:
            await dropper.catch_up(app[hub_key])
            dropped_state = (dict(dropper.docs), dict(dropper.seqs))
            await dropper.close()
            clients.remove(dropper)
        elif dropped_state is not None and dropper not in clients and writes >= 140:
            # Reconnect and resume from what it held: the history replays what it missed.
            dropper = await LiveClient.connect(client, token)
            dropper.docs, dropper.seqs = dropped_state
            await subscribe_all(app, dropper, list(dropper.docs), since=dropper.seqs)
            clients.append(dropper)
            joined = True
        if late_joiner is None and writes >= 180:
            late_joiner = await LiveClient.connect(client, token)
            await subscribe_all(
                app, late_joiner, ["vm-contexts", *[f"vm-context/{vm.name}" for vm in appliance.vms.values()]]
            )
            clients.append(late_joiner)
            joined = True
        if joined:
            await assert_converged(app, client, auth_headers, clients)

    # The sequence really exercised what it claims to.
    for kind in (
        "progress",
        "identical",
        "disk",
        "same_second",
        "start",
        "finish",
        "create",
        "delete",
        "reason",
        "drop_job",
    ):
        assert kinds.get(kind, 0) >= 3, (kind, kinds)
    # last_job really moved, failures with their reasons included.
    last_job_patches = [
        item["last_job"]
        for message in dashboard_only.log
        if message.get("type") == "delta" and message.get("topic") == "vm-contexts"
        for item in message["patch"]["vm_contexts"].values()
        if isinstance(item, dict) and "last_job" in item and "context_id" not in item  # changes, not new VMs
    ]
    assert len(last_job_patches) >= 20, len(last_job_patches)
    assert any(patch is None for patch in last_job_patches)  # a VM's only ended job deleted
    assert any(isinstance(patch, dict) and patch.get("status") == "failed" for patch in last_job_patches)
    assert any(isinstance(patch, dict) and "retry" in str(patch.get("error_message")) for patch in last_job_patches)
    resumed = [m for m in dropper.log if m.get("topic") == "vm-contexts"]
    assert resumed and resumed[0]["type"] == "delta", "the resumed client got the missed deltas replayed"
    assert all(m["type"] == "delta" for m in resumed)
    return kinds


async def test_clients_converge_to_rest_under_random_writes(manual_app, token, auth_headers):
    app, client = manual_app
    await run_convergence(app, client, token, auth_headers, app[poller_key].poll_once)
