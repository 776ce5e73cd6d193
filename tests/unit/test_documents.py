"""documents.DocumentBuilder reads the store's named rows by name, never by position."""

from __future__ import annotations

import datetime as dt
from collections import namedtuple

import pytest

from pushsvc import documents
from pushsvc.documents import DocumentBuilder
from pushsvc.store.rows import CbtRow, ContextRow, DiskRow, JobHistoryRow, JobRow, LastJobRow

TABLES = [
    (documents.CONTEXT_FIELDS, ContextRow),
    (documents.JOB_FIELDS, JobRow),
    (documents.JOB_HISTORY_FIELDS, JobHistoryRow),
    (documents.LAST_JOB_FIELDS, LastJobRow),
    (documents.DISK_FIELDS, DiskRow),
    (documents.CBT_FIELDS, CbtRow),
]


@pytest.mark.parametrize(("fields", "row_type"), TABLES, ids=lambda value: getattr(value, "__name__", ""))
def test_every_document_field_comes_from_a_column_the_store_reads(fields, row_type):
    assert [column for _, column, _ in fields] == list(row_type._fields)


def test_fields_are_found_by_name_whatever_the_column_order():
    builder = DocumentBuilder(dt.UTC)
    columns = list(JobHistoryRow._fields)
    reordered = namedtuple("Reordered", list(reversed(columns)))
    values = {column: f"value of {column}" for column in columns}
    values.update(progress_percent=12, created_at=None, completed_at=None)
    build = builder._compile(documents.JOB_HISTORY_FIELDS, reordered._fields)
    entry = build(reordered(**values))
    assert list(entry) == [key for key, _, _ in documents.JOB_HISTORY_FIELDS]
    assert entry["id"] == "value of id" and entry["status"] == "value of status"
    assert entry["progress_percent"] == 12.0 and isinstance(entry["progress_percent"], float)


def test_a_field_the_row_lacks_is_an_error_not_a_wrong_value():
    with pytest.raises(ValueError, match=r"has no column .*status"):
        DocumentBuilder(dt.UTC)._compile(documents.JOB_HISTORY_FIELDS, ("id",))


def test_a_context_without_a_current_job_has_none():
    assert DocumentBuilder(dt.UTC).job(None) is None


def test_a_context_without_another_job_has_no_last_job():
    assert DocumentBuilder(dt.UTC).last_job(None) is None


def test_the_job_summary_keeps_the_jobs_field_order_and_the_entry_ends_with_both_jobs():
    job_keys = [key for key, _, _ in documents.JOB_FIELDS]
    summary_keys = list(documents.JOB_SUMMARY_KEYS)
    assert summary_keys == [key for key in job_keys if key in summary_keys]
    assert {"error_message", "vma_last_poll_at"} <= set(summary_keys)
    last = DocumentBuilder(dt.UTC).last_job(
        LastJobRow("job-1", "failed", "initial", "boom", "2025-09-09 11:45:23.122", "2025-09-09 11:45:23.122")
    )
    assert last == {
        "id": "job-1",
        "status": "failed",
        "replication_type": "initial",
        "error_message": "boom",
        "completed_at": "2025-09-09T11:45:23.122+00:00",
        "updated_at": "2025-09-09T11:45:23.122+00:00",
    }
    entry = documents.dashboard_entry({"vm_name": "a"}, None, last)
    assert list(entry) == ["vm_name", "current_job", "last_job"] and entry["last_job"] is last
