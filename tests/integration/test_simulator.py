"""The demo data and the simulator: appliance-shaped writes, seen through the REST API.

Every test runs on MariaDB and on the embedded SQLite store. The simulator is
stepped by hand with a scripted clock; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from pushsvc.app import create_app
from pushsvc.demo.context import demo_context, prepare_demo_database
from pushsvc.demo.data import FLEET, SEED_CONTEXT_IDS, UNREACHABLE_VMS, VMA_TIMEOUT_MESSAGE, MiB, load_demo
from pushsvc.demo.seed import SEED_CONTEXT, ms
from pushsvc.demo.simulator import Simulator
from pushsvc.store import StoreUnavailable
from pushsvc.store.writes import for_engine, insert_row

from ..helpers import assert_same_document as assert_same_json
from ..helpers import load_seed_json as seed_json

pytestmark = pytest.mark.parametrize("engine", ["mariadb", "sqlite"], indirect=True)

T0 = dt.datetime(2025, 9, 12, 10, 0, 0)
PGTEST1 = SEED_CONTEXT["context_id"]
ENDED = {"completed", "failed"}
FOREIGN = "ctx-appliance-vm-01-20250912-083000"


class ScriptedClock:
    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


# ---- reading the database as a test sees it ----------------------------------

CONTEXT_COLUMNS = (
    "context_id",
    "vm_name",
    "current_status",
    "current_job_id",
    "total_jobs_run",
    "successful_jobs",
    "failed_jobs",
    "last_successful_job_id",
    "first_job_at",
    "last_job_at",
    "last_status_change",
    "updated_at",
)
JOB_COLUMNS = (
    "id",
    "vm_context_id",
    "status",
    "replication_type",
    "progress_percent",
    "bytes_transferred",
    "total_bytes",
    "transfer_speed_bps",
    "vma_throughput_mbps",
    "vma_eta_seconds",
    "error_message",
    "change_id",
    "previous_change_id",
    "created_at",
    "updated_at",
    "completed_at",
)
DISK_COLUMNS = (
    "id",
    "vm_context_id",
    "job_id",
    "disk_id",
    "sync_status",
    "sync_progress_percent",
    "bytes_synced",
    "disk_change_id",
    "capacity_bytes",
)
CBT_COLUMNS = (
    "id",
    "vm_context_id",
    "job_id",
    "disk_id",
    "change_id",
    "previous_change_id",
    "sync_type",
    "sync_success",
)


async def read_world(store) -> dict[str, Any]:
    """Every row the assertions look at, as dicts keyed by id."""
    async with store.snapshot() as reader:
        tables = {}
        for name, table, columns in (
            ("contexts", "vm_replication_contexts", CONTEXT_COLUMNS),
            ("jobs", "replication_jobs", JOB_COLUMNS),
            ("disks", "vm_disks", DISK_COLUMNS),
            ("cbt", "cbt_history", CBT_COLUMNS),
        ):
            rows = await reader.fetch_all(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}")
            tables[name] = {row[0]: dict(zip(columns, row)) for row in rows}
    return tables


async def dump_rows(store, context_ids) -> dict[str, list[tuple]]:
    """Whole rows (every column) of the given contexts in all four tables."""
    ids = sorted(context_ids)
    marks = ", ".join(["%s"] * len(ids))
    dumps = {}
    async with store.snapshot() as reader:
        dumps["contexts"] = await reader.fetch_all(
            f"SELECT * FROM vm_replication_contexts WHERE context_id IN ({marks}) ORDER BY context_id", ids
        )
        for table, order in (("replication_jobs", "id"), ("vm_disks", "id"), ("cbt_history", "id")):
            dumps[table] = await reader.fetch_all(
                f"SELECT * FROM {table} WHERE vm_context_id IN ({marks}) ORDER BY {order}", ids
            )
    return dumps


def jobs_of(world, context_id: str) -> list[dict]:
    return sorted(
        (job for job in world["jobs"].values() if job["vm_context_id"] == context_id),
        key=lambda job: (str(job["created_at"]), job["id"]),
    )


def disks_of(world, context_id: str) -> list[dict]:
    return [disk for disk in world["disks"].values() if disk["vm_context_id"] == context_id]


async def add_foreign_vm(store) -> None:
    """Another writer's VM (an active job, a disk, a CBT row) that the simulator must never touch."""
    engine = store.engine
    async with store.transaction() as writer:
        await insert_row(
            writer,
            "vm_replication_contexts",
            for_engine(
                {
                    "context_id": FOREIGN,
                    "vm_name": "appliance-vm-01",
                    "vmware_vm_id": "4205ffff-0000-1111-2222-333344445555",
                    "vm_path": "/DatabanxDC/vm/appliance-vm-01",
                    "vcenter_host": "quad-vcenter-01.quadris.local",
                    "datacenter": "DatabanxDC",
                    "current_status": "replicating",
                    "total_jobs_run": 1,
                    "created_at": ms("2025-09-12 08:30:00"),
                    "last_status_change": ms("2025-09-12 08:30:00"),
                },
                engine,
            ),
        )
        await insert_row(
            writer,
            "replication_jobs",
            for_engine(
                {
                    "id": "job-20250912-083000",
                    "vm_context_id": FOREIGN,
                    "source_vm_id": "4205ffff-0000-1111-2222-333344445555",
                    "source_vm_name": "appliance-vm-01",
                    "source_vm_path": "/DatabanxDC/vm/appliance-vm-01",
                    "v_center_host": "quad-vcenter-01.quadris.local",
                    "datacenter": "DatabanxDC",
                    "replication_type": "initial",
                    "status": "replicating",
                    "progress_percent": 10.0,
                    "bytes_transferred": 1 << 30,
                    "total_bytes": 10 << 30,
                    "transfer_speed_bps": 12 * MiB,
                    "created_at": ms("2025-09-12 08:30:00.123"),
                    "updated_at": ms("2025-09-12 09:59:59.500"),
                },
                engine,
            ),
        )
        await writer.execute(
            "UPDATE vm_replication_contexts SET current_job_id = %s WHERE context_id = %s",
            ["job-20250912-083000", FOREIGN],
        )
        await insert_row(
            writer,
            "vm_disks",
            for_engine(
                {
                    "vm_context_id": FOREIGN,
                    "job_id": "job-20250912-083000",
                    "disk_id": "disk-2000",
                    "vm_dk_path": "[vsanDatastore] x/appliance-vm-01.vmdk",
                    "size_gb": 40,
                    "capacity_bytes": 40 << 30,
                    "sync_status": "syncing",
                    "created_at": ms("2025-09-12 08:30:00.130"),
                },
                engine,
            ),
        )
        await insert_row(
            writer,
            "cbt_history",
            for_engine(
                {
                    "vm_context_id": FOREIGN,
                    "job_id": "job-20250912-083000",
                    "disk_id": "disk-2000",
                    "change_id": "",
                    "sync_type": "initial",
                    "created_at": ms("2025-09-12 08:30:00.140"),
                },
                engine,
            ),
        )


# ---- REST consistency ------------------------------------------------------------


async def check_rest(client, headers, world, demo_ids) -> None:
    """The list and every detail agree with each other and with the database."""
    response = await client.get("/api/v1/vm-contexts", headers=headers)
    assert response.status == 200
    listing = await response.json()
    assert listing["count"] == len(world["contexts"]) == len(listing["vm_contexts"])
    for item in listing["vm_contexts"]:
        context_id = item["context_id"]
        response = await client.get(f"/api/v1/vm-contexts/{item['vm_name']}", headers=headers)
        assert response.status == 200
        detail = await response.json()
        assert detail["context"] == item
        jobs = jobs_of(world, context_id)
        job_ids = {job["id"] for job in jobs}
        current = item["current_job_id"]
        if current is None:
            assert detail["current_job"] is None
        else:
            assert detail["current_job"]["id"] == current and current in job_ids
            assert detail["current_job"]["vm_context_id"] == context_id
            assert detail["current_job"]["status"] not in ENDED
        history = [job["id"] for job in detail["job_history"]]
        assert len(history) <= 10 and current not in history and set(history) <= job_ids
        assert history == [job["id"] for job in reversed(jobs) if job["id"] != current][:10]
        assert all(disk["job_id"] in job_ids for disk in detail["disks"])
        assert len(detail["cbt_history"]) <= 20 and all(row["job_id"] in job_ids for row in detail["cbt_history"])
        if context_id in demo_ids and jobs:
            latest = jobs[-1]["id"]
            assert all(disk["job_id"] == latest for disk in detail["disks"]), item["vm_name"]
            assert item["total_jobs_run"] == len(jobs)
            assert item["successful_jobs"] == sum(job["status"] == "completed" for job in jobs)
            assert item["failed_jobs"] == sum(job["status"] == "failed" for job in jobs)
            assert item["current_status"] == (
                "replicating" if current else jobs[-1]["status"].replace("completed", "ready_for_failover")
            )


async def assert_seed_vm_untouched(client, headers) -> None:
    response = await client.get("/api/v1/vm-contexts/pgtest1", headers=headers)
    assert response.status == 200
    assert_same_json(await response.json(), seed_json("detail-response.json"))


# ---- load_demo ---------------------------------------------------------------


async def test_load_demo_writes_a_dozen_vms_in_a_mix_of_states(store, client, auth_headers):
    ids = await load_demo(store, T0)
    assert len(ids) == len(FLEET) + 2 == 12
    world = await read_world(store)
    assert set(world["contexts"]) == ids
    await check_rest(client, auth_headers, world, ids - SEED_CONTEXT_IDS)

    statuses = [context["current_status"] for context in world["contexts"].values()]
    assert statuses.count("replicating") >= 5
    assert statuses.count("ready_for_failover") >= 3
    assert statuses.count("failed") == 1 and statuses.count("discovered") == 2
    by_name = {context["vm_name"]: context for context in world["contexts"].values()}
    for context in by_name.values():
        assert context["context_id"].startswith(f"ctx-{context['vm_name']}-")
    kinds = {job["replication_type"] for job in world["jobs"].values() if job["status"] == "replicating"}
    assert kinds == {"initial", "incremental"}

    for job in world["jobs"].values():
        if job["status"] == "replicating" and job["vm_context_id"] != PGTEST1:
            remaining = job["total_bytes"] - job["bytes_transferred"]
            assert job["progress_percent"] == pytest.approx(job["bytes_transferred"] / job["total_bytes"] * 100)
            assert job["vma_eta_seconds"] == int(remaining / job["transfer_speed_bps"])
            assert float(job["vma_throughput_mbps"]) == round(job["transfer_speed_bps"] / MiB, 2)
            assert 10 <= job["transfer_speed_bps"] / MiB <= 500
        if job["replication_type"] == "initial":
            assert job["previous_change_id"] == ""

    failed = by_name["legacy-crm-01"]
    failed_job = jobs_of(world, failed["context_id"])[-1]
    assert failed_job["status"] == "failed" and failed_job["error_message"]
    assert failed["current_job_id"] is None and failed["failed_jobs"] == 1

    discovered = by_name["k8s-worker-04"]
    assert discovered["current_status"] == "discovered" and not jobs_of(world, discovered["context_id"])

    busy = by_name["erp-db-02"]
    response = await client.get("/api/v1/vm-contexts/erp-db-02", headers=auth_headers)
    detail = await response.json()
    assert busy["total_jobs_run"] > 10 and len(detail["job_history"]) == 10
    assert len(detail["cbt_history"]) == 20 and all(disk["sync_status"] == "synced" for disk in detail["disks"])
    assert detail["disks"][0]["disk_change_id"] == detail["cbt_history"][1]["change_id"] != ""


async def test_load_demo_is_deterministic_for_a_seed_and_time(store):
    await load_demo(store, T0)
    first = await read_world(store)
    async with store.transaction() as writer:
        await writer.execute("DELETE FROM vm_replication_contexts")
    await load_demo(store, T0)
    second = await read_world(store)

    def without_ids(rows):  # auto-increment ids differ between the two loads
        return [{key: value for key, value in row.items() if key != "id"} for row in rows.values()]

    def strip(world):
        return world["contexts"], world["jobs"], without_ids(world["disks"]), without_ids(world["cbt"])

    assert strip(first) == strip(second)


async def test_the_seed_vm_is_exactly_the_seed(store, client, auth_headers):
    await load_demo(store, T0)
    await assert_seed_vm_untouched(client, auth_headers)
    response = await client.get("/api/v1/vm-contexts", headers=auth_headers)
    listing = await response.json()
    pgtest1 = next(item for item in listing["vm_contexts"] if item["vm_name"] == "pgtest1")
    assert_same_json(pgtest1, seed_json("list-response.json")["vm_contexts"][0])


# ---- the simulator ---------------------------------------------------------


async def test_steps_drive_jobs_like_the_appliance_and_keep_the_api_consistent(store, client, auth_headers):
    ids = await load_demo(store, T0)
    await add_foreign_vm(store)
    demo_ids = ids - SEED_CONTEXT_IDS
    untouched = await dump_rows(store, SEED_CONTEXT_IDS | {FOREIGN})
    clock = ScriptedClock()
    simulator = Simulator(store, ids, clock=clock, seed=7, idle_seconds=(20, 60), failure_rate=0.01)
    events = {"progress": 0, "completed": 0, "failed": 0, "started": 0, "stalled": 0}
    before = await read_world(store)

    for _ in range(80):
        clock.advance(5)
        await simulator.step()
        after = await read_world(store)
        check_transition(before, after, clock.now, events)
        await check_rest(client, auth_headers, after, demo_ids)
        before = after

    assert events["progress"] > 50 and events["completed"] >= 3 and events["started"] >= 3 and events["stalled"] >= 1
    assert await dump_rows(store, SEED_CONTEXT_IDS | {FOREIGN}) == untouched
    await assert_seed_vm_untouched(client, auth_headers)


def check_transition(before, after, now, events) -> None:
    """What one step may have done, row by row."""
    now_s = now.replace(microsecond=0)
    assert set(before["contexts"]) == set(after["contexts"])
    # CBT history is insert-only.
    for row_id, row in before["cbt"].items():
        assert after["cbt"][row_id] == row
    new_cbt = [row for row_id, row in after["cbt"].items() if row_id not in before["cbt"]]

    for job_id, old in before["jobs"].items():
        new = after["jobs"][job_id]
        context = after["contexts"][new["vm_context_id"]]
        old_context = before["contexts"][new["vm_context_id"]]
        if old["status"] in ENDED:
            assert new == old, job_id
        elif new["status"] == "replicating" and old["status"] == "replicating":
            assert new["bytes_transferred"] >= old["bytes_transferred"]
            assert new["progress_percent"] >= old["progress_percent"]
            assert new["progress_percent"] == pytest.approx(new["bytes_transferred"] / new["total_bytes"] * 100)
            if new != old:
                events["progress"] += 1
                if new["bytes_transferred"] == old["bytes_transferred"]:
                    events["stalled"] += 1  # polled, no bytes moved
        elif new["status"] == "completed":
            events["completed"] += 1
            assert new["progress_percent"] == 100.0 and new["bytes_transferred"] == new["total_bytes"]
            assert parse(new["completed_at"]) == now and new["change_id"]
            assert context["current_job_id"] is None and context["current_status"] == "ready_for_failover"
            assert context["successful_jobs"] == old_context["successful_jobs"] + 1
            assert context["failed_jobs"] == old_context["failed_jobs"]
            assert context["total_jobs_run"] == old_context["total_jobs_run"]
            assert context["last_successful_job_id"] == job_id
            assert parse(context["last_job_at"]) == parse(context["last_status_change"]) == now_s
            disks = disks_of(after, context["context_id"])
            rows = [row for row in new_cbt if row["job_id"] == job_id]
            assert sorted(row["disk_id"] for row in rows) == sorted(disk["disk_id"] for disk in disks)
            for disk in disks:
                assert disk["job_id"] == job_id and disk["sync_status"] == "synced"
                assert disk["sync_progress_percent"] == 100.0
                row = next(row for row in rows if row["disk_id"] == disk["disk_id"])
                assert row["sync_success"] and row["change_id"] == disk["disk_change_id"] != ""
                old_disk = before["disks"][disk["id"]]
                assert row["change_id"] != old_disk["disk_change_id"]
            assert sum(disk["bytes_synced"] for disk in disks) == new["total_bytes"]
        elif new["status"] == "failed":
            events["failed"] += 1
            assert new["error_message"] and parse(new["completed_at"]) == now
            assert context["current_job_id"] is None and context["current_status"] == "failed"
            assert context["failed_jobs"] == old_context["failed_jobs"] + 1
            assert context["successful_jobs"] == old_context["successful_jobs"]
        else:
            assert context["current_job_id"] == job_id
        if new != old:
            assert parse(new["updated_at"]) in (now, parse(old["updated_at"]))

    for job_id in set(after["jobs"]) - set(before["jobs"]):
        events["started"] += 1
        job = after["jobs"][job_id]
        context = after["contexts"][job["vm_context_id"]]
        old_context = before["contexts"][job["vm_context_id"]]
        assert old_context["current_job_id"] is None
        assert old_context["current_status"] in ("ready_for_failover", "failed")
        assert job["status"] == "pending" and job["bytes_transferred"] == 0 and parse(job["created_at"]) == now
        assert job["replication_type"] == ("incremental" if old_context["last_successful_job_id"] else "initial")
        assert context["current_job_id"] == job_id and context["current_status"] == "replicating"
        assert context["total_jobs_run"] == old_context["total_jobs_run"] + 1
        assert parse(context["last_job_at"]) == now_s
        disks = disks_of(after, context["context_id"])
        rows = [row for row in new_cbt if row["job_id"] == job_id]
        assert sorted(row["disk_id"] for row in rows) == sorted(disk["disk_id"] for disk in disks) != []
        for disk in disks:
            assert disk["job_id"] == job_id and disk["sync_status"] == "pending" and disk["bytes_synced"] == 0
            row = next(row for row in rows if row["disk_id"] == disk["disk_id"])
            assert row["change_id"] == "" and not row["sync_success"]
            assert row["sync_type"] == job["replication_type"]
            if job["replication_type"] == "incremental":
                assert row["previous_change_id"] == disk["disk_change_id"] != ""


def parse(value) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value)


def check_disks_follow_the_job(detail: dict[str, Any]) -> str:
    """A VM's disks agree with the job they point to, as the API shows them; returns what was checked.

    Each disk shows its job's percentage and its part of the job's bytes
    (parts in proportion to capacity): the disks' bytes add up to the job's,
    and the bytes each disk's percentage implies are its part, within
    rounding. So a disk can never show "75.0% synced" beside bytes that are
    not 75 % of its part of the job.
    """
    disks = detail["disks"]
    current = detail["current_job"]
    job = current if current is not None else (detail["job_history"] or [None])[0]
    if not disks or job is None:
        return "no job"
    assert {disk["job_id"] for disk in disks} == {job["id"]}, detail["context"]["vm_name"]
    capacity = sum(disk["capacity_bytes"] for disk in disks)
    total, done = job["total_bytes"], job["bytes_transferred"]
    statuses = {disk["sync_status"] for disk in disks}
    if job["status"] in ("pending", "initializing", "analyzing", "ready_for_sync"):
        assert statuses == {"pending"} and all(disk["bytes_synced"] == 0 for disk in disks)
        assert all(disk["sync_progress_percent"] == 0.0 for disk in disks)
        return "setup"
    assert sum(disk["bytes_synced"] for disk in disks) == done
    for disk in disks:
        part = total * disk["capacity_bytes"] / capacity
        assert disk["sync_progress_percent"] == job["progress_percent"]
        assert abs(disk["bytes_synced"] - done * disk["capacity_bytes"] / capacity) <= len(disks)
        assert disk["bytes_synced"] <= disk["capacity_bytes"]
        if disk["sync_progress_percent"] > 0:
            implied_part = disk["bytes_synced"] * 100 / disk["sync_progress_percent"]
            assert abs(implied_part - part) <= len(disks) * 100 / disk["sync_progress_percent"] + 1
    expected = {"replicating": {"syncing"}, "completed": {"synced"}, "failed": {"failed"}}[job["status"]]
    assert statuses == expected, (detail["context"]["vm_name"], job["status"], statuses)
    if job["status"] == "completed":
        assert done == total and all(disk["sync_progress_percent"] == 100.0 for disk in disks)
    return str(job["status"])


async def test_disks_follow_the_job_bytes_at_every_step(store, client, auth_headers):
    ids = await load_demo(store, T0)
    names = {context["vm_name"] for context in (await read_world(store))["contexts"].values()}
    clock = ScriptedClock()
    simulator = Simulator(
        store, ids, clock=clock, seed=11, idle_seconds=(5, 30), failure_rate=0.01, max_active=10, vma_timeout=240
    )
    seen: dict[str, int] = {}
    for step in range(120):
        if step:
            clock.advance(5)
            await simulator.step()
        for name in sorted(names - {"pgtest1", "pgtest2"}):  # the seed's own rows are the appliance's, kept as they are
            response = await client.get(f"/api/v1/vm-contexts/{name}", headers=auth_headers)
            checked = check_disks_follow_the_job(await response.json())
            seen[checked] = seen.get(checked, 0) + 1
    # Every kind of state was checked many times, multi-disk VMs among them.
    assert seen["replicating"] > 300 and seen["completed"] > 100 and seen["failed"] >= 20 and seen["setup"] >= 10, seen
    assert sum(len(spec.disks_gb) > 1 for spec in FLEET) >= 4


async def test_the_demo_shows_a_failure_reason_and_a_stalled_job(store, client, auth_headers):
    await load_demo(store, T0)
    listing = await (await client.get("/api/v1/vm-contexts?include=last_job", headers=auth_headers)).json()
    items = {item["vm_name"]: item for item in listing["vm_contexts"]}
    failed = items["legacy-crm-01"]
    assert failed["current_status"] == "failed" and failed["current_job_id"] is None
    assert failed["last_job"]["status"] == "failed" and failed["last_job"]["error_message"]
    assert {"file-srv-03"} == UNREACHABLE_VMS
    detail = await (await client.get("/api/v1/vm-contexts/file-srv-03", headers=auth_headers)).json()
    job = detail["current_job"]
    polled = dt.datetime.fromisoformat(job["vma_last_poll_at"]).replace(tzinfo=None)
    assert job["status"] == "replicating" and 7 * 60 < (T0 - polled).total_seconds() < 8 * 60
    assert job["updated_at"][:19] == job["vma_last_poll_at"][:19]


async def test_an_unreachable_vma_stalls_its_job_until_the_appliance_gives_up(store, client, auth_headers):
    await load_demo(store, T0)
    clock = ScriptedClock()
    simulator = Simulator(
        store,
        await load_ids(store),
        clock=clock,
        seed=2,
        failure_rate=0,
        idle_seconds=(0, 0),
        max_active=100,
        vma_timeout=600,
    )
    before = await job_row(store, "file-srv-03")
    polled = parse(before["vma_last_poll_at"])
    assert polled is not None
    while clock.now + dt.timedelta(seconds=60) - polled < dt.timedelta(seconds=600):
        clock.advance(60)
        await simulator.step()
        assert await job_row(store, "file-srv-03") == before  # nothing written: the job goes stale
    clock.advance(60)
    await simulator.step()
    after = await job_row(store, "file-srv-03")
    assert after["status"] == "failed" and after["error_message"] == VMA_TIMEOUT_MESSAGE.format(seconds=600)
    assert parse(after["vma_last_poll_at"]) == polled and parse(after["completed_at"]) == clock.now
    listing = await (await client.get("/api/v1/vm-contexts?include=last_job", headers=auth_headers)).json()
    item = next(item for item in listing["vm_contexts"] if item["vm_name"] == "file-srv-03")
    assert item["current_status"] == "failed" and item["last_job"]["id"] == before["id"]
    assert item["last_job"]["error_message"] == VMA_TIMEOUT_MESSAGE.format(seconds=600)

    # The tunnel is back: the VM's next job reaches its transfer and is polled again.
    for _ in range(6):
        clock.advance(2)
        await simulator.step()
    job = await job_row(store, "file-srv-03")
    assert job["id"] != before["id"] and job["status"] == "replicating"
    failed_at = parse(after["completed_at"])
    assert failed_at is not None and parse(job["vma_last_poll_at"]) > failed_at


async def load_ids(store) -> set[str]:
    return set((await read_world(store))["contexts"])


async def job_row(store, vm_name: str) -> dict[str, Any]:
    """The VM's newest job, every column the simulator writes."""
    columns = ("id", "status", "error_message", "bytes_transferred", "vma_last_poll_at", "updated_at", "completed_at")
    async with store.snapshot() as reader:
        rows = await reader.fetch_all(
            f"SELECT {', '.join('j.' + column for column in columns)} FROM replication_jobs j"
            " JOIN vm_replication_contexts c ON c.context_id = j.vm_context_id"
            " WHERE c.vm_name = %s ORDER BY j.created_at DESC LIMIT 1",
            [vm_name],
        )
    return dict(zip(columns, rows[0]))


async def test_a_failure_updates_the_job_disks_and_context(store):
    ids = await load_demo(store, T0)
    before = await read_world(store)
    clock = ScriptedClock()
    clock.advance(2)
    await Simulator(store, ids, clock=clock, seed=1, failure_rate=1.0).step()
    after = await read_world(store)
    transferring = [
        job
        for job in before["jobs"].values()
        if job["status"] == "replicating" and job["vm_context_id"] not in SEED_CONTEXT_IDS
    ]
    assert len(transferring) >= 4
    for old in transferring:
        job = after["jobs"][old["id"]]
        context, old_context = after["contexts"][job["vm_context_id"]], before["contexts"][job["vm_context_id"]]
        assert job["status"] == "failed" and job["error_message"] and parse(job["completed_at"]) == clock.now
        assert job["bytes_transferred"] == old["bytes_transferred"]
        assert context["current_status"] == "failed" and context["current_job_id"] is None
        assert context["failed_jobs"] == old_context["failed_jobs"] + 1
        assert parse(context["last_status_change"]) == clock.now
        assert {disk["sync_status"] for disk in disks_of(after, context["context_id"])} <= {"synced", "failed"}
    # A job still in its setup phase cannot fail in transfer; it moves to the next phase.
    setup = [job for job in before["jobs"].values() if job["status"] == "analyzing"]
    assert setup and after["jobs"][setup[0]["id"]]["status"] == "ready_for_sync"
    assert after["jobs"]["job-20250909-114850"] == before["jobs"]["job-20250909-114850"]


async def test_idle_vms_start_new_jobs_that_go_through_setup_to_transfer(store):
    ids = await load_demo(store, T0)
    before = await read_world(store)
    clock = ScriptedClock()
    simulator = Simulator(store, ids, clock=clock, seed=3, idle_seconds=(0, 0), max_active=100, failure_rate=0)
    clock.advance(2)
    await simulator.step()
    after = await read_world(store)
    events = {"progress": 0, "completed": 0, "failed": 0, "started": 0, "stalled": 0}
    check_transition(before, after, clock.now, events)
    idle = {
        context_id
        for context_id, context in before["contexts"].items()
        if context_id not in SEED_CONTEXT_IDS and context["current_status"] in ("ready_for_failover", "failed")
    }
    new_jobs = {job["vm_context_id"]: job for job_id, job in after["jobs"].items() if job_id not in before["jobs"]}
    assert set(new_jobs) == idle and len(idle) >= 4
    assert all(job["id"].startswith("job-20250912-100002.000-") for job in new_jobs.values())
    discovered = [c for c in after["contexts"].values() if c["current_status"] == "discovered"]
    assert len(discovered) == 2  # never started

    seen = {context_id: [job["status"]] for context_id, job in new_jobs.items()}
    for _ in range(4):
        clock.advance(2)
        await simulator.step()
        world = await read_world(store)
        for context_id, job in new_jobs.items():
            seen[context_id].append(world["jobs"][job["id"]]["status"])
    for statuses in seen.values():
        assert statuses == ["pending", "initializing", "analyzing", "ready_for_sync", "replicating"]


async def test_keep_seed_false_drives_the_seed_vm_too(store):
    ids = await load_demo(store, T0)
    clock = ScriptedClock()
    simulator = Simulator(store, ids, clock=clock, seed=5, keep_seed=False, stall_rate=0, failure_rate=0)
    clock.advance(2)
    await simulator.step()
    world = await read_world(store)
    job = world["jobs"]["job-20250909-114850"]
    assert job["bytes_transferred"] > 19058917376 and parse(job["updated_at"]) == clock.now


async def test_run_logs_errors_backs_off_and_keeps_going(store, caplog):
    simulator = Simulator(store, set(), clock=ScriptedClock(), seed=1)
    calls = []
    done = asyncio.Event()

    async def flaky_step():
        calls.append(len(calls))
        if len(calls) == 1:
            raise StoreUnavailable("OperationalError 2003")
        if len(calls) == 2:
            raise RuntimeError("boom")
        done.set()

    simulator.step = flaky_step
    task = asyncio.create_task(simulator.run(period=0))
    await asyncio.wait_for(done.wait(), 5)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) >= 3
    messages = [record.getMessage() for record in caplog.records if record.name == "pushsvc.demo.simulator"]
    assert any("database unavailable" in message for message in messages)
    assert any("step failed" in message for message in messages)


async def test_run_stops_even_when_a_step_swallows_the_cancellation(store):
    # Python 3.11's wait_for (inside the store) can drop a cancellation that races a finishing query.
    simulator = Simulator(store, set(), clock=ScriptedClock(), seed=1)
    entered = asyncio.Event()

    async def swallowing_step():
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass

    simulator.step = swallowing_step
    task = asyncio.create_task(simulator.run(period=0.01))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)


# ---- --demo ----------------------------------------------------------------


async def test_demo_context_creates_the_schema_loads_and_simulates(config, aiohttp_client, auth_headers):
    # ``config`` first: its database must outlive the app, whose simulator may be mid-transaction.
    app = create_app(config)
    app.cleanup_ctx.insert(0, demo_context(simulate=True))
    client = await aiohttp_client(app)
    try:
        response = await client.get("/api/v1/vm-contexts", headers=auth_headers)
        assert (await response.json())["count"] == 12
        await assert_seed_vm_untouched(client, auth_headers)
    finally:
        await client.close()  # cancels the simulator and closes its connections


async def test_demo_leaves_a_populated_database_alone(store):
    await add_foreign_vm(store)
    assert await prepare_demo_database(store, T0) == set()
    assert len((await read_world(store))["contexts"]) == 1


async def test_a_restarted_demo_finds_the_vms_it_wrote(store):
    ids = await load_demo(store, T0)
    await add_foreign_vm(store)
    assert await prepare_demo_database(store, T0) == ids - SEED_CONTEXT_IDS
