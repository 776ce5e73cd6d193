"""The rows the store returns: one named type per SELECT shape.

These types are the single description of the columns pushsvc reads. Field
names are the appliance's column names (docs/appliance-schema.md) in SELECT
order, and ``queries`` builds every column list from ``_fields``, so a row
type and its SELECT cannot disagree. Code outside ``store/`` reads rows by
name only (``row.context.vm_name``), never by position.

Rows are NamedTuples on purpose: the poller's "did anything change" check is
plain tuple equality, done in C, and a tick compares every context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

# A column value as the driver returns it. Engines differ (MariaDB gives
# datetime and Decimal where SQLite gives text and float); documents.py
# converts them, so the row types do not pretend to know more.
Value = Any


class ContextRow(NamedTuple):
    """A ``vm_replication_contexts`` row: the columns a context document shows."""

    context_id: str
    vm_name: str
    vmware_vm_id: Value
    vm_path: Value
    vcenter_host: Value
    datacenter: Value
    current_status: Value
    current_job_id: Value
    total_jobs_run: Value
    successful_jobs: Value
    failed_jobs: Value
    last_successful_job_id: Value
    cpu_count: Value
    memory_mb: Value
    os_type: Value
    power_state: Value
    vm_tools_version: Value
    created_at: Value
    updated_at: Value
    first_job_at: Value
    last_job_at: Value
    last_status_change: Value


class JobRow(NamedTuple):
    """A ``replication_jobs`` row as the current job of a context."""

    id: str
    vm_context_id: str
    source_vm_id: Value
    source_vm_name: Value
    status: Value
    replication_type: Value
    progress_percent: Value
    current_operation: Value
    bytes_transferred: Value
    total_bytes: Value
    transfer_speed_bps: Value
    error_message: Value
    change_id: Value
    previous_change_id: Value
    nbd_export_name: Value
    vma_sync_type: Value
    vma_current_phase: Value
    vma_throughput_mbps: Value
    vma_eta_seconds: Value
    vma_last_poll_at: Value
    created_at: Value
    updated_at: Value


class JobHistoryRow(NamedTuple):
    """A ``replication_jobs`` row as an entry of a context's job history."""

    id: Value
    status: Value
    replication_type: Value
    progress_percent: Value
    bytes_transferred: Value
    total_bytes: Value
    created_at: Value
    completed_at: Value


class LastJobRow(NamedTuple):
    """A ``replication_jobs`` row as a context's last job: its newest job other than the current one."""

    id: str
    status: Value
    replication_type: Value
    error_message: Value
    completed_at: Value
    updated_at: Value


class DiskRow(NamedTuple):
    """A ``vm_disks`` row."""

    id: Value
    job_id: Value
    vm_context_id: str
    disk_id: Value
    vm_dk_path: Value
    size_gb: Value
    datastore: Value
    unit_number: Value
    label: Value
    capacity_bytes: Value
    provisioning_type: Value
    ossea_volume_id: Value
    cpu_count: Value
    memory_mb: Value
    os_type: Value
    vm_tools_version: Value
    network_config: Value
    display_name: Value
    annotation: Value
    power_state: Value
    vmware_uuid: Value
    disk_change_id: Value
    sync_status: Value
    sync_progress_percent: Value
    bytes_synced: Value
    created_at: Value
    updated_at: Value


class CbtRow(NamedTuple):
    """A ``cbt_history`` row."""

    id: Value
    job_id: Value
    vm_context_id: str
    disk_id: Value
    change_id: Value
    previous_change_id: Value
    sync_type: Value
    blocks_changed: Value
    bytes_transferred: Value
    sync_duration_seconds: Value
    sync_success: Value
    created_at: Value


class ContextWithJob(NamedTuple):
    """A context joined with its current job and its last job (each None when it has none)."""

    context: ContextRow
    job: JobRow | None
    last_job: LastJobRow | None


@dataclass
class Children:
    """A context's rows from the three child tables, in document order."""

    job_history: list[JobHistoryRow] = field(default_factory=list)
    disks: list[DiskRow] = field(default_factory=list)
    cbt_history: list[CbtRow] = field(default_factory=list)


def columns(fields: tuple[str, ...], alias: str = "") -> str:
    """The SELECT list for a row type's ``_fields``, optionally qualified by a table alias."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + column for column in fields)
