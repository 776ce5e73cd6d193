"""Rows written the way the appliance writes them: the seed doc's example VM.

``load_seed`` reproduces ``docs/vm-context-api.md``: pgtest1 with its
current job, one earlier job, one disk and one CBT row, plus a second VM so
that the list's ``count`` is 2 as in the seed. Times are local (naive) values;
with ``database.timezone: Europe/London`` they render with the seed's +01:00.
"""

from __future__ import annotations

import datetime as dt

from ..store import Store
from ..store.writes import for_engine, insert_row, to_db

SEED_TIMEZONE = "Europe/London"


def ms(text: str) -> dt.datetime:
    """A naive local time from ``YYYY-MM-DD HH:MM:SS[.fff]``."""
    return dt.datetime.fromisoformat(text)


SEED_CONTEXT = {
    "context_id": "ctx-pgtest1-20250909-113839",
    "vm_name": "pgtest1",
    "vmware_vm_id": "420570c7-f61f-a930-77c5-1e876786cb3c",
    "vm_path": "/DatabanxDC/vm/pgtest1",
    "vcenter_host": "quad-vcenter-01.quadris.local",
    "datacenter": "DatabanxDC",
    "current_status": "replicating",
    "total_jobs_run": 2,
    "successful_jobs": 0,
    "failed_jobs": 0,
    "last_successful_job_id": None,
    "cpu_count": 2,
    "memory_mb": 8192,
    "os_type": "windows",
    "power_state": "poweredOn",
    "vm_tools_version": "11.3.5",
    "created_at": ms("2025-09-09 11:38:39"),
    "updated_at": ms("2025-09-09 11:48:50"),
    "first_job_at": ms("2025-09-09 11:38:39"),
    "last_job_at": ms("2025-09-09 11:48:50"),
    "last_status_change": ms("2025-09-09 11:48:50"),
}

# What both of pgtest1's jobs say about their VM (the seed doc's values).
_PGTEST1_JOB_SOURCE = {
    "vm_context_id": "ctx-pgtest1-20250909-113839",
    "source_vm_id": "420570c7-f61f-a930-77c5-1e876786cb3c",
    "source_vm_name": "pgtest1",
    "source_vm_path": "/DatabanxDC/vm/pgtest1",
    "v_center_host": "quad-vcenter-01.quadris.local",
    "datacenter": "DatabanxDC",
    "replication_type": "initial",
}

SEED_EARLIER_JOB = {
    "id": "job-20250909-113839",
    **_PGTEST1_JOB_SOURCE,
    "status": "completed",
    "progress_percent": 100.0,
    "current_operation": "Completed",
    "bytes_transferred": 38654705664,
    "total_bytes": 38654705664,
    "transfer_speed_bps": 0,
    "error_message": "",
    "change_id": "",
    "previous_change_id": "",
    "nbd_export_name": "migration-vol-0b1c6a2e-2f11-4a53-9f0e-1d8f1e0c9a11",
    "vma_sync_type": "full",
    "vma_current_phase": "Completed",
    "vma_throughput_mbps": 0,
    "created_at": ms("2025-09-09 11:38:39.716"),
    "updated_at": ms("2025-09-09 11:45:23.122"),
    "started_at": ms("2025-09-09 11:38:40.002"),
    "completed_at": ms("2025-09-09 11:45:23.122"),
}

SEED_CURRENT_JOB = {
    "id": "job-20250909-114850",
    **_PGTEST1_JOB_SOURCE,
    "status": "replicating",
    "progress_percent": 49.30555555555556,
    "current_operation": "Transferring Data",
    "bytes_transferred": 19058917376,
    "total_bytes": 38654705664,
    "transfer_speed_bps": 12013439,
    "error_message": "",
    "change_id": "",
    "previous_change_id": "",
    "nbd_export_name": "migration-vol-5dbff3d8-531a-4a80-9977-c5ae25b9c4ae",
    "vma_sync_type": "full",
    "vma_current_phase": "Transfer",
    "vma_throughput_mbps": 11.46,
    "vma_eta_seconds": 1631,
    "vma_last_poll_at": ms("2025-09-09 12:12:08"),
    "created_at": ms("2025-09-09 11:48:50.709"),
    "updated_at": ms("2025-09-09 12:12:08.204"),
    "started_at": ms("2025-09-09 11:48:51.010"),
}

SEED_DISK = {
    "id": 573,
    "vm_context_id": "ctx-pgtest1-20250909-113839",
    "job_id": "job-20250909-114850",
    "disk_id": "disk-2000",
    "vm_dk_path": "[vsanDatastore] 285ea568-64bc-07e9-4bc3-000af7864054/pgtest1.vmdk",
    "size_gb": 102,
    "datastore": "vsanDatastore",
    "unit_number": 0,
    "label": "Hard disk 1",
    "capacity_bytes": 109521666048,
    "provisioning_type": "thin",
    "ossea_volume_id": 160,
    "cpu_count": 2,
    "memory_mb": 8192,
    "os_type": "windows",
    "vm_tools_version": "",
    "network_config": (
        '[{"name":"","type":"","connected":false,"mac_address":"00:50:56:85:3c:59","label":"Network adapter 1",'
        '"network_name":"VLAN 253 - QUADRIS_CLOUD-DMZ","adapter_type":"vmxnet3"}]'
    ),
    "display_name": "",
    "annotation": "",
    "power_state": "poweredOn",
    "vmware_uuid": "420570c7-f61f-a930-77c5-1e876786cb3c",
    "disk_change_id": "",
    "sync_status": "pending",
    "sync_progress_percent": 0,
    "bytes_synced": 0,
    "created_at": ms("2025-09-09 11:48:50.717"),
    "updated_at": ms("2025-09-09 11:48:50.723"),
}

SEED_CBT = {
    "id": 552,
    "vm_context_id": "ctx-pgtest1-20250909-113839",
    "job_id": "job-20250909-114850",
    "disk_id": "disk-2000",
    "change_id": "",
    "previous_change_id": "",
    "sync_type": "initial",
    "blocks_changed": 0,
    "bytes_transferred": 0,
    "sync_duration_seconds": 0,
    "sync_success": 0,
    "created_at": ms("2025-09-09 11:48:50.734"),
}

SECOND_CONTEXT = {
    "context_id": "ctx-pgtest2-20250909-120102",
    "vm_name": "pgtest2",
    "vmware_vm_id": "4205a1b2-7c3d-8e9f-0a1b-2c3d4e5f6a7b",
    "vm_path": "/DatabanxDC/vm/pgtest2",
    "vcenter_host": "quad-vcenter-01.quadris.local",
    "datacenter": "DatabanxDC",
    "current_status": "discovered",
    "cpu_count": 4,
    "memory_mb": 16384,
    "os_type": "linux",
    "power_state": "poweredOn",
    "vm_tools_version": "11.3.5",
    "created_at": ms("2025-09-09 12:01:02"),
    "updated_at": ms("2025-09-09 12:01:02"),
    "last_status_change": ms("2025-09-09 12:01:02"),
}


async def load_seed(store: Store) -> None:
    """Write the seed doc's example (pgtest1) and a second VM, as the appliance would."""
    engine = store.engine
    async with store.transaction() as writer:
        # Inserted without updated_at, then set explicitly below: an explicit value
        # is what keeps MariaDB's ON UPDATE (and the SQLite trigger) from moving it.
        context = {key: value for key, value in SEED_CONTEXT.items() if key != "updated_at"}
        await insert_row(writer, "vm_replication_contexts", for_engine(context, engine))
        await insert_row(writer, "replication_jobs", for_engine(SEED_EARLIER_JOB, engine))
        await insert_row(writer, "replication_jobs", for_engine(SEED_CURRENT_JOB, engine))
        await writer.execute(
            "UPDATE vm_replication_contexts SET current_job_id = %s, updated_at = %s WHERE context_id = %s",
            [SEED_CURRENT_JOB["id"], to_db(SEED_CONTEXT["updated_at"], engine), SEED_CONTEXT["context_id"]],
        )
        await insert_row(writer, "vm_disks", for_engine(SEED_DISK, engine))
        await insert_row(writer, "cbt_history", for_engine(SEED_CBT, engine))
        await insert_row(writer, "vm_replication_contexts", for_engine(SECOND_CONTEXT, engine))
