"""The seed-shaped JSON documents, built from database rows.

This is the one place that knows the JSON field names, their order and types.
Each ``*_FIELDS`` tuple maps a JSON key to the row field (the database
column) it comes from and a conversion. The store's named row types
(``store/rows.py``) say which columns are read; a converter resolves its
fields by name against the row type once, so the order of the store's
columns can never key a document by the wrong column.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Iterable
from typing import Any

from .store.rows import CbtRow, ContextRow, DiskRow, JobHistoryRow, JobRow, LastJobRow
from .timefmt import format_local

Fields = tuple[tuple[str, str, str], ...]

RAW, TIME, FLOAT, BOOL = "raw", "time", "float", "bool"

CONTEXT_FIELDS: Fields = (
    ("context_id", "context_id", RAW),
    ("vm_name", "vm_name", RAW),
    ("vmware_vm_id", "vmware_vm_id", RAW),
    ("vm_path", "vm_path", RAW),
    ("vcenter_host", "vcenter_host", RAW),
    ("datacenter", "datacenter", RAW),
    ("current_status", "current_status", RAW),
    ("current_job_id", "current_job_id", RAW),
    ("total_jobs_run", "total_jobs_run", RAW),
    ("successful_jobs", "successful_jobs", RAW),
    ("failed_jobs", "failed_jobs", RAW),
    ("last_successful_job_id", "last_successful_job_id", RAW),
    ("cpu_count", "cpu_count", RAW),
    ("memory_mb", "memory_mb", RAW),
    ("os_type", "os_type", RAW),
    ("power_state", "power_state", RAW),
    ("vm_tools_version", "vm_tools_version", RAW),
    ("created_at", "created_at", TIME),
    ("updated_at", "updated_at", TIME),
    ("first_job_at", "first_job_at", TIME),
    ("last_job_at", "last_job_at", TIME),
    ("last_status_change", "last_status_change", TIME),
)

JOB_FIELDS: Fields = (
    ("id", "id", RAW),
    ("vm_context_id", "vm_context_id", RAW),
    ("source_vm_id", "source_vm_id", RAW),
    ("source_vm_name", "source_vm_name", RAW),
    ("status", "status", RAW),
    ("replication_type", "replication_type", RAW),
    ("progress_percent", "progress_percent", FLOAT),
    ("current_operation", "current_operation", RAW),
    ("bytes_transferred", "bytes_transferred", RAW),
    ("total_bytes", "total_bytes", RAW),
    ("transfer_speed_bps", "transfer_speed_bps", RAW),
    ("error_message", "error_message", RAW),
    ("change_id", "change_id", RAW),
    ("previous_change_id", "previous_change_id", RAW),
    ("nbd_export_name", "nbd_export_name", RAW),
    ("vma_sync_type", "vma_sync_type", RAW),
    ("vma_current_phase", "vma_current_phase", RAW),
    ("vma_throughput_mbps", "vma_throughput_mbps", FLOAT),
    ("vma_eta_seconds", "vma_eta_seconds", RAW),
    ("vma_last_poll_at", "vma_last_poll_at", TIME),
    ("created_at", "created_at", TIME),
    ("updated_at", "updated_at", TIME),
)

JOB_HISTORY_FIELDS: Fields = (
    ("id", "id", RAW),
    ("status", "status", RAW),
    ("replication_type", "replication_type", RAW),
    ("progress_percent", "progress_percent", FLOAT),
    ("bytes_transferred", "bytes_transferred", RAW),
    ("total_bytes", "total_bytes", RAW),
    ("created_at", "created_at", TIME),
    ("completed_at", "completed_at", TIME),
)

# A context's last job (protocol.md: the dashboard item's and ``?include=last_job``'s ``last_job``).
LAST_JOB_FIELDS: Fields = (
    ("id", "id", RAW),
    ("status", "status", RAW),
    ("replication_type", "replication_type", RAW),
    ("error_message", "error_message", RAW),
    ("completed_at", "completed_at", TIME),
    ("updated_at", "updated_at", TIME),
)

DISK_FIELDS: Fields = (
    ("id", "id", RAW),
    ("job_id", "job_id", RAW),
    ("vm_context_id", "vm_context_id", RAW),
    ("disk_id", "disk_id", RAW),
    ("vmdk_path", "vm_dk_path", RAW),
    ("size_gb", "size_gb", RAW),
    ("datastore", "datastore", RAW),
    ("unit_number", "unit_number", RAW),
    ("label", "label", RAW),
    ("capacity_bytes", "capacity_bytes", RAW),
    ("provisioning_type", "provisioning_type", RAW),
    ("ossea_volume_id", "ossea_volume_id", RAW),
    ("cpu_count", "cpu_count", RAW),
    ("memory_mb", "memory_mb", RAW),
    ("os_type", "os_type", RAW),
    ("vm_tools_version", "vm_tools_version", RAW),
    ("network_config", "network_config", RAW),
    ("display_name", "display_name", RAW),
    ("annotation", "annotation", RAW),
    ("power_state", "power_state", RAW),
    ("vmware_uuid", "vmware_uuid", RAW),
    ("disk_change_id", "disk_change_id", RAW),
    ("sync_status", "sync_status", RAW),
    ("sync_progress_percent", "sync_progress_percent", FLOAT),
    ("bytes_synced", "bytes_synced", RAW),
    ("created_at", "created_at", TIME),
    ("updated_at", "updated_at", TIME),
)

CBT_FIELDS: Fields = (
    ("id", "id", RAW),
    ("job_id", "job_id", RAW),
    ("vm_context_id", "vm_context_id", RAW),
    ("disk_id", "disk_id", RAW),
    ("change_id", "change_id", RAW),
    ("previous_change_id", "previous_change_id", RAW),
    ("sync_type", "sync_type", RAW),
    ("blocks_changed", "blocks_changed", RAW),
    ("bytes_transferred", "bytes_transferred", RAW),
    ("sync_duration_seconds", "sync_duration_seconds", RAW),
    ("sync_success", "sync_success", BOOL),
    ("created_at", "created_at", TIME),
)

# The dashboard's job summary (protocol.md, topic vm-contexts), in the job's field order.
JOB_SUMMARY_KEYS: tuple[str, ...] = (
    "id",
    "status",
    "replication_type",
    "progress_percent",
    "current_operation",
    "bytes_transferred",
    "total_bytes",
    "transfer_speed_bps",
    "error_message",
    "vma_throughput_mbps",
    "vma_eta_seconds",
    "vma_last_poll_at",
    "updated_at",
)


def _as_float(value: Any) -> Any:
    return None if value is None else float(value)


def _as_bool(value: Any) -> Any:
    return None if value is None else bool(value)


TIME_CACHE_SIZE = 8192


class DocumentBuilder:
    """Turns the store's named rows into seed-shaped dicts, formatting times in the database's zone."""

    def __init__(self, zone: dt.tzinfo) -> None:
        self.zone = zone
        self._converters: dict[int, Callable[[tuple[Any, ...]], dict[str, Any]]] = {}
        # Formatted times by stored value: every read brings back the same times.
        self._times: dict[Any, str | None] = {}

    def format_time(self, value: Any) -> str | None:
        """``format_local`` in this builder's zone, remembered per stored value (bounded)."""
        if value is None:
            return None
        if getattr(value, "fold", 0):
            # The repeated hour's second pass compares equal to the first: never from the cache.
            return format_local(value, self.zone)
        text = self._times.get(value)
        if text is None:
            text = format_local(value, self.zone)
            if len(self._times) >= TIME_CACHE_SIZE:
                self._times.clear()
            self._times[value] = text
        return text

    def _converter(self, fields: Fields, row_fields: tuple[str, ...]) -> Callable[[tuple[Any, ...]], dict[str, Any]]:
        converter = self._converters.get(id(fields))
        if converter is None:
            converter = self._converters[id(fields)] = self._compile(fields, row_fields)
        return converter

    def _compile(self, fields: Fields, row_fields: tuple[str, ...]) -> Callable[[tuple[Any, ...]], dict[str, Any]]:
        """A row -> dict function; each JSON key's value is found by its column's name in ``row_fields``."""
        convert = {
            RAW: None,
            TIME: self.format_time,
            FLOAT: _as_float,
            BOOL: _as_bool,
        }
        wanted = tuple(column for _, column, _ in fields)
        unknown = set(wanted) - set(row_fields)
        if unknown:
            raise ValueError(f"the store's row has no column {', '.join(sorted(unknown))}")
        plan = [(key, convert[kind]) for key, _, kind in fields]
        # The usual case: the row holds exactly these columns in this order, and
        # is zipped as it is; otherwise the columns are picked out by name.
        pick: Callable[[tuple[Any, ...]], Iterable[Any]] | None = (
            None if wanted == row_fields else operator.attrgetter(*wanted)
        )

        def build(row: tuple[Any, ...]) -> dict[str, Any]:
            values = row if pick is None else pick(row)
            return {key: (value if fn is None else fn(value)) for (key, fn), value in zip(plan, values)}

        return build

    def context(self, row: ContextRow) -> dict[str, Any]:
        return self._converter(CONTEXT_FIELDS, ContextRow._fields)(row)

    def job(self, row: JobRow | None) -> dict[str, Any] | None:
        """The full current-job object, or None when the context has no current job."""
        if row is None:
            return None
        return self._converter(JOB_FIELDS, JobRow._fields)(row)

    def last_job(self, row: LastJobRow | None) -> dict[str, Any] | None:
        """A context's last job, or None when it has no job besides the current one."""
        if row is None:
            return None
        return self._converter(LAST_JOB_FIELDS, LastJobRow._fields)(row)

    def job_history(self, rows: Iterable[JobHistoryRow]) -> list[dict[str, Any]]:
        build = self._converter(JOB_HISTORY_FIELDS, JobHistoryRow._fields)
        return [build(row) for row in rows]

    def disks(self, rows: Iterable[DiskRow]) -> list[dict[str, Any]]:
        build = self._converter(DISK_FIELDS, DiskRow._fields)
        return [build(row) for row in rows]

    def cbt_history(self, rows: Iterable[CbtRow]) -> list[dict[str, Any]]:
        build = self._converter(CBT_FIELDS, CbtRow._fields)
        return [build(row) for row in rows]


def job_summary(job: dict[str, Any] | None) -> dict[str, Any] | None:
    """The dashboard's view of a current job."""
    if job is None:
        return None
    return {key: job[key] for key in JOB_SUMMARY_KEYS}


def dashboard_entry(
    context: dict[str, Any], current_job: dict[str, Any] | None, last_job: dict[str, Any] | None
) -> dict[str, Any]:
    """One VM in the ``vm-contexts`` document: the list item plus its job summary and last job."""
    entry = dict(context)
    entry["current_job"] = job_summary(current_job)
    entry["last_job"] = last_job
    return entry


def list_item_with_last_job(context: dict[str, Any], last_job: dict[str, Any] | None) -> dict[str, Any]:
    """A REST list item with ``?include=last_job``: the seed's fields, then ``last_job``."""
    item = dict(context)
    item["last_job"] = last_job
    return item


def detail_document(
    context: dict[str, Any],
    current_job: dict[str, Any] | None,
    job_history: list[dict[str, Any]],
    disks: list[dict[str, Any]],
    cbt_history: list[dict[str, Any]],
) -> dict[str, Any]:
    """The REST detail body, also the ``vm-context/<name>`` document."""
    return {
        "context": context,
        "current_job": current_job,
        "job_history": job_history,
        "disks": disks,
        "cbt_history": cbt_history,
    }


def list_document(count: int, contexts: list[dict[str, Any]]) -> dict[str, Any]:
    """The REST list body."""
    return {"count": count, "vm_contexts": contexts}
