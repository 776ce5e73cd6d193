"""``last_job``: a context's newest job other than its current one, in the dashboard topic and on REST.

The appliance clears ``current_job_id`` when a job ends, so ``last_job`` is
where a failed VM's reason (``error_message``) lives. Every test runs on
MariaDB and on the embedded SQLite store: the statement is shared, the
engines' ordering rules are not.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pushsvc.demo.seed import SECOND_CONTEXT, SEED_CONTEXT, SEED_CURRENT_JOB, SEED_EARLIER_JOB, ms
from pushsvc.keys import poller_key
from pushsvc.store import Store
from pushsvc.store.writes import for_engine, insert_row, to_db

from ..helpers import assert_error_body, assert_same_document, load_seed_json
from ..wsclient import LiveClient

pytestmark = pytest.mark.parametrize("engine", ["mariadb", "sqlite"], indirect=True)

PGTEST1_ID = SEED_CONTEXT["context_id"]
PGTEST2_ID = SECOND_CONTEXT["context_id"]
# The seed's earlier (completed) job, as last_job shows it.
SEED_LAST_JOB = {
    "id": "job-20250909-113839",
    "status": "completed",
    "replication_type": "initial",
    "error_message": "",
    "completed_at": "2025-09-09T11:45:23.122+01:00",
    "updated_at": "2025-09-09T11:45:23.122+01:00",
}
LAST_JOB_KEYS = ["id", "status", "replication_type", "error_message", "completed_at", "updated_at"]
FAILURE = "migratekit exited with status 1: QueryChangedDiskAreas failed: FileFault: Error caused by file pgtest2.vmdk"


async def execute(store: Store, sql: str, args: list[Any] | tuple[Any, ...] = ()) -> int:
    async with store.transaction() as writer:
        return await writer.execute(sql, args)


async def add_job(store: Store, job_id: str, context_id: str = PGTEST2_ID, **columns: Any) -> None:
    """A job row as the appliance inserts it (the seed's current job with another id and context)."""
    row = {
        **SEED_CURRENT_JOB,
        "id": job_id,
        "vm_context_id": context_id,
        "nbd_export_name": f"migration-vol-{job_id}",
        **columns,
    }
    async with store.transaction() as writer:
        await insert_row(writer, "replication_jobs", for_engine(row, store.engine))


async def listing(client, headers, query: str = "?include=last_job") -> dict[str, Any]:
    response = await client.get("/api/v1/vm-contexts" + query, headers=headers)
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


def last_jobs(body: dict[str, Any]) -> dict[str, Any]:
    return {item["vm_name"]: item["last_job"] for item in body["vm_contexts"]}


# ---- REST: ?include=last_job ------------------------------------------------------------


async def test_include_last_job_adds_the_field_after_the_seed_fields(client, seeded, auth_headers):
    body = await listing(client, auth_headers)
    seed = load_seed_json("list-response.json")
    assert body["count"] == 2
    pgtest1, pgtest2 = body["vm_contexts"]
    assert list(pgtest1) == [*seed["vm_contexts"][0], "last_job"]
    assert_same_document({k: v for k, v in pgtest1.items() if k != "last_job"}, seed["vm_contexts"][0])
    assert list(pgtest1["last_job"]) == LAST_JOB_KEYS
    assert pgtest1["last_job"] == SEED_LAST_JOB
    assert pgtest2["last_job"] is None  # no job at all


async def test_without_include_the_list_is_the_seed_body_byte_for_byte(client, seeded, auth_headers):
    plain = await client.get("/api/v1/vm-contexts", headers=auth_headers)
    included = await listing(client, auth_headers)
    body = await plain.json()
    assert all("last_job" not in item for item in body["vm_contexts"])
    stripped = {
        "count": included["count"],
        "vm_contexts": [{k: v for k, v in item.items() if k != "last_job"} for item in included["vm_contexts"]],
    }
    assert_same_document(body, stripped)
    # Different bodies, different ETags: a cached plain list never answers an include request.
    again = await client.get("/api/v1/vm-contexts?include=last_job", headers=auth_headers)
    assert again.headers["ETag"] != plain.headers["ETag"]


@pytest.mark.parametrize(
    "query",
    [
        "include=last_jobs",
        "include=",
        "include=last_job,",
        "include=last_job,current_job",
        "include=%20last_job",
        "include=LAST_JOB",
        "include=last_job&include=last_job",
    ],
)
async def test_a_bad_include_is_400_with_the_seed_error_body(client, seeded, auth_headers, query):
    response = await client.get(f"/api/v1/vm-contexts?{query}", headers=auth_headers)
    assert response.status == 400
    message = (
        "include may be given only once"
        if query.count("include=") == 2
        else "include must be a comma-separated list of: last_job"
    )
    assert_error_body(await response.json(), message)


async def test_a_name_repeated_inside_the_list_counts_once(client, seeded, auth_headers):
    assert last_jobs(await listing(client, auth_headers, "?include=last_job,last_job")) == {
        "pgtest1": SEED_LAST_JOB,
        "pgtest2": None,
    }


async def test_include_with_status_and_a_page(client, seeded, auth_headers):
    body = await listing(client, auth_headers, "?status=discovered&include=last_job")
    assert body["count"] == 1 and last_jobs(body) == {"pgtest2": None}
    body = await listing(client, auth_headers, "?include=last_job&limit=1&offset=0")
    assert body["count"] == 2 and last_jobs(body) == {"pgtest1": SEED_LAST_JOB}
    body = await listing(client, auth_headers, "?include=last_job&limit=1&offset=5")
    assert body == {"count": 2, "vm_contexts": []}


async def test_newest_is_by_created_at_then_id_never_the_current_job_and_heads_the_history(
    client, seeded, auth_headers
):
    # pgtest2: jobs created out of id order, two sharing a created_at, one without a created_at.
    await add_job(seeded, "job-a-0001", status="completed", created_at=ms("2025-09-10 08:00:00.250"))
    await add_job(seeded, "job-a-0003", status="failed", created_at=ms("2025-09-10 09:00:00.500"))
    await add_job(seeded, "job-a-0002", status="failed", created_at=ms("2025-09-10 09:00:00.500"))
    await add_job(seeded, "job-a-0009", status="completed", created_at=None)

    async def newest() -> str | None:
        last = last_jobs(await listing(client, auth_headers))["pgtest2"]
        detail = await (await client.get("/api/v1/vm-contexts/pgtest2", headers=auth_headers)).json()
        if last is None:
            assert detail["job_history"] == []
            return None
        head = detail["job_history"][0]
        assert {key: last[key] for key in head if key in last} == {key: head[key] for key in head if key in last}
        return str(last["id"])

    # The same created_at: the greater id wins. A NULL created_at is older than any time.
    assert await newest() == "job-a-0003"
    # The current job is never the last job: the next one down is.
    await execute(
        seeded,
        "UPDATE vm_replication_contexts SET current_job_id = %s WHERE context_id = %s",
        ["job-a-0003", PGTEST2_ID],
    )
    assert await newest() == "job-a-0002"
    await execute(seeded, "DELETE FROM replication_jobs WHERE id IN (%s, %s)", ["job-a-0002", "job-a-0001"])
    assert await newest() == "job-a-0009"
    await execute(seeded, "DELETE FROM replication_jobs WHERE id = %s", ["job-a-0009"])
    assert await newest() is None  # only the current job is left
    # pgtest1 did not move meanwhile.
    assert last_jobs(await listing(client, auth_headers))["pgtest1"] == SEED_LAST_JOB


# ---- the vm-contexts topic -------------------------------------------------------------------


async def subscribed_dashboard(app, client, token) -> LiveClient:
    live = await LiveClient.connect(client, token)
    await live.send({"type": "subscribe", "topic": "vm-contexts"})
    await live.send({"type": "ping", "id": "subscribed"})
    await live.expect("pong")  # replies come in order: the subscribe has been handled
    await app[poller_key].poll_once()
    await live.expect("snapshot")
    return live


async def test_dashboard_items_carry_last_job_after_current_job(manual_app, seeded, token, auth_headers):
    app, client = manual_app
    live = await subscribed_dashboard(app, client, token)
    items = live.docs["vm-contexts"]["vm_contexts"]
    assert list(items["pgtest1"])[-2:] == ["current_job", "last_job"]
    assert list(items["pgtest1"]["last_job"]) == LAST_JOB_KEYS
    assert items["pgtest1"]["last_job"] == SEED_LAST_JOB
    assert items["pgtest2"]["last_job"] is None
    # The current job's summary carries the appliance's last poll and the job's error.
    summary = items["pgtest1"]["current_job"]
    assert summary["vma_last_poll_at"] == "2025-09-09T12:12:08+01:00" and summary["error_message"] == ""
    assert last_jobs(await listing(client, auth_headers)) == {name: item["last_job"] for name, item in items.items()}


async def test_a_failing_job_shows_in_last_job_within_one_tick(manual_app, seeded, token):
    app, client = manual_app
    live = await subscribed_dashboard(app, client, token)
    started = dt.datetime(2025, 9, 10, 9, 0, 0, 125000)
    # The appliance starts a job on pgtest2: it is current, so last_job stays null.
    await add_job(seeded, "job-20250910-090000", status="replicating", created_at=started, updated_at=started)
    await execute(
        seeded,
        "UPDATE vm_replication_contexts SET current_job_id = %s, current_status = 'replicating' WHERE context_id = %s",
        ["job-20250910-090000", PGTEST2_ID],
    )
    await app[poller_key].poll_once()
    patch = (await live.expect("delta"))["patch"]["vm_contexts"]["pgtest2"]
    assert patch["current_job"]["id"] == "job-20250910-090000" and "last_job" not in patch

    # It fails: the job gets its reason and the context loses it as its current job, in one transaction.
    ended = to_db(dt.datetime(2025, 9, 10, 9, 5, 0, 750000), seeded.engine)
    async with seeded.transaction() as writer:
        await writer.execute(
            "UPDATE replication_jobs SET status = 'failed', error_message = %s, completed_at = %s, updated_at = %s"
            " WHERE id = %s",
            [FAILURE, ended, ended, "job-20250910-090000"],
        )
        await writer.execute(
            "UPDATE vm_replication_contexts SET current_job_id = NULL, current_status = 'failed',"
            " failed_jobs = 1 WHERE context_id = %s",
            [PGTEST2_ID],
        )
    await app[poller_key].poll_once()
    patch = (await live.expect("delta"))["patch"]["vm_contexts"]["pgtest2"]
    assert patch["current_status"] == "failed" and patch["current_job"] is None
    assert patch["last_job"] == {
        "id": "job-20250910-090000",
        "status": "failed",
        "replication_type": "initial",
        "error_message": FAILURE,
        "completed_at": "2025-09-10T09:05:00.75+01:00",
        "updated_at": "2025-09-10T09:05:00.75+01:00",
    }

    # A later fix-up of the reason alone (a writer that touches nothing else) is one small delta.
    await execute(
        seeded, "UPDATE replication_jobs SET error_message = %s WHERE id = %s", ["retried", "job-20250910-090000"]
    )
    await app[poller_key].poll_once()
    delta = await live.expect("delta")
    assert delta["patch"] == {"vm_contexts": {"pgtest2": {"last_job": {"error_message": "retried"}}}}

    # The job is deleted: last_job is null again.
    await execute(seeded, "DELETE FROM replication_jobs WHERE id = %s", ["job-20250910-090000"])
    await app[poller_key].poll_once()
    delta = await live.expect("delta")
    assert delta["patch"]["vm_contexts"]["pgtest2"]["last_job"] is None


async def test_a_completed_job_replaces_the_last_job(manual_app, seeded, token):
    app, client = manual_app
    live = await subscribed_dashboard(app, client, token)
    done = to_db(ms("2025-09-09 12:40:00.5"), seeded.engine)
    async with seeded.transaction() as writer:
        await writer.execute(
            "UPDATE replication_jobs SET status = 'completed', progress_percent = 100, completed_at = %s,"
            " updated_at = %s WHERE id = %s",
            [done, done, SEED_CURRENT_JOB["id"]],
        )
        await writer.execute(
            "UPDATE vm_replication_contexts SET current_job_id = NULL, current_status = 'ready_for_failover',"
            " successful_jobs = 1, last_successful_job_id = %s WHERE context_id = %s",
            [SEED_CURRENT_JOB["id"], PGTEST1_ID],
        )
    await app[poller_key].poll_once()
    patch = (await live.expect("delta"))["patch"]["vm_contexts"]["pgtest1"]
    assert patch["current_job"] is None
    # A merge patch against the earlier last job: its status, type and error were the same.
    assert patch["last_job"] == {
        "id": SEED_CURRENT_JOB["id"],
        "completed_at": "2025-09-09T12:40:00.5+01:00",
        "updated_at": "2025-09-09T12:40:00.5+01:00",
    }
    assert (SEED_EARLIER_JOB["status"], SEED_EARLIER_JOB["replication_type"]) == ("completed", "initial")
    assert live.document("vm-contexts")["vm_contexts"]["pgtest1"]["last_job"] == {
        "id": SEED_CURRENT_JOB["id"],
        "status": "completed",
        "replication_type": "initial",
        "error_message": "",
        "completed_at": "2025-09-09T12:40:00.5+01:00",
        "updated_at": "2025-09-09T12:40:00.5+01:00",
    }
