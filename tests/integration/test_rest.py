"""The seed's two endpoints, against MariaDB and the embedded SQLite store."""

from __future__ import annotations

import datetime as dt
import urllib.parse

import pytest

from pushsvc.demo.seed import SEED_CURRENT_JOB, ms
from pushsvc.store.writes import for_engine, insert_row

from ..helpers import assert_error_body, assert_same_document, load_seed_json

pytestmark = pytest.mark.parametrize("engine", ["mariadb", "sqlite"], indirect=True)


async def test_list_matches_the_seed(client, seeded, auth_headers):
    response = await client.get("/api/v1/vm-contexts", headers=auth_headers)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = await response.json()
    expected = load_seed_json("list-response.json")
    assert list(body) == ["count", "vm_contexts"]
    assert body["count"] == expected["count"] == 2
    assert [item["vm_name"] for item in body["vm_contexts"]] == ["pgtest1", "pgtest2"]
    assert_same_document(body["vm_contexts"][0], expected["vm_contexts"][0])


async def test_detail_matches_the_seed(client, seeded, auth_headers):
    response = await client.get("/api/v1/vm-contexts/pgtest1", headers=auth_headers)
    assert response.status == 200
    assert_same_document(await response.json(), load_seed_json("detail-response.json"))


async def test_unknown_vm_is_404_with_the_seed_body(client, seeded, auth_headers):
    response = await client.get("/api/v1/vm-contexts/nonexistent-vm", headers=auth_headers)
    assert response.status == 404
    assert_error_body(await response.json(), "VM context not found for: nonexistent-vm")


async def test_vm_lookup_is_exact(client, seeded, auth_headers):
    # MariaDB's collation would match these; the API must not.
    for name in ("PGTEST1", "pgtest1 ", "pgtest"):
        response = await client.get(f"/api/v1/vm-contexts/{urllib.parse.quote(name)}", headers=auth_headers)
        assert response.status == 404, name


async def test_vm_without_jobs_has_null_job_and_empty_lists(client, seeded, auth_headers):
    body = await (await client.get("/api/v1/vm-contexts/pgtest2", headers=auth_headers)).json()
    assert body["current_job"] is None
    assert body["job_history"] == [] and body["disks"] == [] and body["cbt_history"] == []
    assert body["context"]["current_job_id"] is None
    assert body["context"]["first_job_at"] is None


def special_context(name: str, index: int) -> dict:
    return {
        "context_id": f"ctx-special-{index}",
        "vm_name": name,
        "vmware_vm_id": f"uuid-{index}",
        "vm_path": f"/DatabanxDC/vm/{name}",
        "vcenter_host": "quad-vcenter-01.quadris.local",
        "datacenter": "DatabanxDC",
        "created_at": ms("2025-09-09 10:00:00"),
    }


SPECIAL_NAMES = ["web server 01", "datenbank-ü-数据", 'o\'brien "db"', "100%_done", "a/b", "x;DROP TABLE vm_disks;--"]


async def test_special_vm_names(client, store, auth_headers):
    async with store.transaction() as writer:
        for index, name in enumerate(SPECIAL_NAMES):
            await insert_row(writer, "vm_replication_contexts", for_engine(special_context(name, index), store.engine))
    for name in SPECIAL_NAMES:
        response = await client.get("/api/v1/vm-contexts/" + urllib.parse.quote(name, safe=""), headers=auth_headers)
        assert response.status == 200, name
        assert (await response.json())["context"]["vm_name"] == name
    listing = await (await client.get("/api/v1/vm-contexts", headers=auth_headers)).json()
    assert sorted(item["vm_name"] for item in listing["vm_contexts"]) == sorted(SPECIAL_NAMES)


def job_row(context: dict, index: int, created: dt.datetime, status: str = "completed") -> dict:
    return {
        "id": f"job-{index:04d}",
        "vm_context_id": context["context_id"],
        "source_vm_id": context["vmware_vm_id"],
        "source_vm_name": context["vm_name"],
        "source_vm_path": context["vm_path"],
        "v_center_host": context["vcenter_host"],
        "datacenter": context["datacenter"],
        "replication_type": "incremental",
        "status": status,
        "progress_percent": 100.0,
        "bytes_transferred": 1024 * index,
        "total_bytes": 1024 * index,
        "created_at": created,
        "updated_at": created,
        "completed_at": created + dt.timedelta(minutes=5),
    }


async def test_history_limits_and_order(client, store, auth_headers):
    context = special_context("busy", 1)
    base = ms("2025-09-01 00:00:00")
    async with store.transaction() as writer:
        await insert_row(writer, "vm_replication_contexts", for_engine(context, store.engine))
        for index in range(15):
            await insert_row(
                writer,
                "replication_jobs",
                for_engine(job_row(context, index, base + dt.timedelta(hours=index)), store.engine),
            )
        for index in range(25):
            await insert_row(
                writer,
                "cbt_history",
                for_engine(
                    {
                        "vm_context_id": context["context_id"],
                        "job_id": f"job-{index % 15:04d}",
                        "disk_id": "disk-2000",
                        "change_id": f"52 3c ec 11/{index}",
                        "sync_type": "incremental",
                        "sync_success": 1,
                        "created_at": base + dt.timedelta(minutes=index),
                    },
                    store.engine,
                ),
            )
        # The newest job is the current one: it is not part of job_history.
        await writer.execute(
            "UPDATE vm_replication_contexts SET current_job_id = %s WHERE context_id = %s",
            ["job-0014", context["context_id"]],
        )
    body = await (await client.get("/api/v1/vm-contexts/busy", headers=auth_headers)).json()
    assert body["current_job"]["id"] == "job-0014"
    assert [job["id"] for job in body["job_history"]] == [f"job-{index:04d}" for index in range(13, 3, -1)]
    assert list(body["job_history"][0]) == [
        "id",
        "status",
        "replication_type",
        "progress_percent",
        "bytes_transferred",
        "total_bytes",
        "created_at",
        "completed_at",
    ]
    changes = [row["change_id"] for row in body["cbt_history"]]
    assert changes == [f"52 3c ec 11/{index}" for index in range(24, 4, -1)]
    assert body["cbt_history"][0]["sync_success"] is True


async def test_etag_round_trip(client, seeded, auth_headers):
    for path in ("/api/v1/vm-contexts", "/api/v1/vm-contexts/pgtest1"):
        first = await client.get(path, headers=auth_headers)
        etag = first.headers["ETag"]
        again = await client.get(path, headers={**auth_headers, "If-None-Match": etag})
        assert again.status == 304 and again.headers["ETag"] == etag
        assert await again.read() == b""
        other = await client.get(path, headers={**auth_headers, "If-None-Match": '"stale"'})
        assert other.status == 200
    async with seeded.transaction() as writer:
        await writer.execute(
            "UPDATE replication_jobs SET progress_percent = 50.5 WHERE id = %s", [SEED_CURRENT_JOB["id"]]
        )
    changed = await client.get("/api/v1/vm-contexts/pgtest1", headers={**auth_headers, "If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert (await changed.json())["current_job"]["progress_percent"] == 50.5


async def test_status_filter_and_pagination(client, seeded, auth_headers):
    body = await (await client.get("/api/v1/vm-contexts?status=replicating", headers=auth_headers)).json()
    assert body["count"] == 1 and [item["vm_name"] for item in body["vm_contexts"]] == ["pgtest1"]
    body = await (await client.get("/api/v1/vm-contexts?status=failed", headers=auth_headers)).json()
    assert body == {"count": 0, "vm_contexts": []}
    body = await (await client.get("/api/v1/vm-contexts?limit=1&offset=1", headers=auth_headers)).json()
    assert body["count"] == 2 and [item["vm_name"] for item in body["vm_contexts"]] == ["pgtest2"]
    body = await (await client.get("/api/v1/vm-contexts?offset=5", headers=auth_headers)).json()
    assert body == {"count": 2, "vm_contexts": []}


@pytest.mark.parametrize(
    "query, message",
    [
        ("limit=0", "limit must be an integer from 1 to 1000"),
        ("limit=abc", "limit must be an integer from 1 to 1000"),
        ("limit=-1", "limit must be an integer from 1 to 1000"),
        ("limit=1001", "limit must be an integer from 1 to 1000"),
        ("offset=x", "offset must be an integer from 0 to 2147483647"),
        ("limit=%C2%B2", "limit must be an integer from 1 to 1000"),
        ("offset=%E2%91%A0", "offset must be an integer from 0 to 2147483647"),
        ("limit=%D9%A3", "limit must be an integer from 1 to 1000"),
        ("offset=" + "9" * 5000, "offset must be an integer from 0 to 2147483647"),
        ("limit=%EF%BC%93", "limit must be an integer from 1 to 1000"),
        ("limit=1&limit=2", "limit may be given only once"),
        (
            "status=bogus",
            "status must be one of: discovered, replicating, ready_for_failover, failed_over_test, "
            "failed_over_live, completed, failed, cleanup_required",
        ),
    ],
)
async def test_bad_query_values_are_400(client, seeded, auth_headers, query, message):
    response = await client.get(f"/api/v1/vm-contexts?{query}", headers=auth_headers)
    assert response.status == 400
    assert_error_body(await response.json(), message)


async def test_unknown_api_path_is_json_404(client, auth_headers):
    response = await client.get("/api/v1/nothing-here", headers=auth_headers)
    assert response.status == 404
    assert (await response.json())["error"] == "Not Found"
