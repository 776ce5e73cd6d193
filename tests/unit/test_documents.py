"""documents.DocumentBuilder reads the store's named rows by name, never by position."""

from __future__ import annotations

import datetime as dt
from collections import namedtuple

import pytest

from pushsvc import documents
from pushsvc.documents import DocumentBuilder
from pushsvc.store.rows import CbtRow, ContextRow, DiskRow, JobHistoryRow, JobRow

TABLES = [
    (documents.CONTEXT_FIELDS, ContextRow),
    (documents.JOB_FIELDS, JobRow),
    (documents.JOB_HISTORY_FIELDS, JobHistoryRow),
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
