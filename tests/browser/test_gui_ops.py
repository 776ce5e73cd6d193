"""The operator's views in Debian's Chromium against the real service and MariaDB.

Stalled jobs marked and unmarked as the appliance's writes go stale and fresh,
the fleet summary against the database, sort/filter/search in the URL over
reload and history, the dimmed data while the connection is down, a failed
VM's reason (the server's ``last_job``) and a stall threshold configured on the
server (``GET /api/v1/gui-settings``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import zoneinfo
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from playwright.async_api import Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from pushsvc.config import Config
from pushsvc.demo.seed import SEED_CONTEXT, SEED_CURRENT_JOB, SEED_TIMEZONE
from pushsvc.store import Store
from pushsvc.store.writes import for_engine, insert_row, to_db

from ..helpers import make_token
from .conftest import TIMEOUT_MS, LiveServer, browser_config, execute, expect_state, sign_in

pytestmark = pytest.mark.browser

Serve = Callable[[Config], Awaitable[LiveServer]]

JOB_ID = str(SEED_CURRENT_JOB["id"])
JOB_SPEED = int(str(SEED_CURRENT_JOB["transfer_speed_bps"]))
JOB_LEFT = int(str(SEED_CURRENT_JOB["total_bytes"])) - int(str(SEED_CURRENT_JOB["bytes_transferred"]))
JOB_ETA = int(str(SEED_CURRENT_JOB["vma_eta_seconds"]))
GiB = 1024**3
MiB = 1024**2
# The GUI's stall threshold when the server does not say otherwise (static/js/health.js).
DEFAULT_STALL_AFTER_S = 120
ENDED = {"completed", "failed", "cancelled", "replication_failed"}
FAILED = {"failed", "replication_failed"}


def local_now(offset_s: float = 0) -> dt.datetime:
    """Now (plus ``offset_s``) as the appliance writes times: naive, in its local zone."""
    now = dt.datetime.now(zoneinfo.ZoneInfo(SEED_TIMEZONE)) + dt.timedelta(seconds=offset_s)
    return now.replace(tzinfo=None, microsecond=0)


async def set_job_activity(store: Store, job_id: str, at: dt.datetime) -> None:
    """The appliance's poller reports on a job: both of its times move to ``at``."""
    value = to_db(at, store.engine)
    await execute(
        store,
        "UPDATE replication_jobs SET vma_last_poll_at = %s, updated_at = %s WHERE id = %s",
        [value, value, job_id],
    )


async def add_vm(store: Store, name: str, status: str, job: dict[str, Any] | None = None) -> None:
    """A VM context (and its current job) written as the appliance writes them."""
    context = {
        **{key: value for key, value in SEED_CONTEXT.items() if key != "updated_at"},
        "context_id": f"ctx-{name}",
        "vm_name": name,
        "vmware_vm_id": f"4205-{name}",
        "vm_path": f"/DatabanxDC/vm/{name}",
        "current_status": status,
        "total_jobs_run": 1 if job else 0,
    }
    async with store.transaction() as writer:
        await insert_row(writer, "vm_replication_contexts", for_engine(context, store.engine))
        if job:
            row = {
                **SEED_CURRENT_JOB,
                "id": f"job-{name}",
                "vm_context_id": f"ctx-{name}",
                "source_vm_name": name,
                "source_vm_path": f"/DatabanxDC/vm/{name}",
                "nbd_export_name": f"migration-vol-{name}",
                **job,
            }
            await insert_row(writer, "replication_jobs", for_engine(row, store.engine))
            await writer.execute(
                "UPDATE vm_replication_contexts SET current_job_id = %s WHERE context_id = %s",
                [f"job-{name}", f"ctx-{name}"],
            )


async def row_order(page: Page) -> list[str]:
    names: list[str] = await page.locator("#vm-list tr[data-vm]").evaluate_all(
        "rows => rows.map(row => row.dataset.vm)"
    )
    return names


async def visible_order(page: Page) -> list[str]:
    names: list[str] = await page.locator("#vm-list tr[data-vm]:not([hidden])").evaluate_all(
        "rows => rows.map(row => row.dataset.vm)"
    )
    return names


async def expect_order(page: Page, expected: list[str], *, visible: bool) -> None:
    """The table's rows (visible ones only, or all) reach ``expected``'s order; a navigation renders
    after the URL changes, so this waits for the render before comparing."""
    selector = "#vm-list tr[data-vm]:not([hidden])" if visible else "#vm-list tr[data-vm]"
    with contextlib.suppress(PlaywrightTimeoutError):
        await page.wait_for_function(
            "([selector, expected]) => JSON.stringify([...document.querySelectorAll(selector)]"
            ".map(row => row.dataset.vm)) === JSON.stringify(expected)",
            arg=[selector, expected],
            timeout=TIMEOUT_MS,
        )
    assert await (visible_order(page) if visible else row_order(page)) == expected


# ---- stalled jobs ------------------------------------------------------------------------


async def test_stalled_job_is_marked_then_unmarked_when_the_appliance_writes_again(
    page: Page, server: LiveServer, seeded: Store
) -> None:
    # The seed's job was last polled on 2025-09-09: far beyond the default threshold.
    await sign_in(page, server, make_token())
    row = page.locator('[data-vm="pgtest1"]')
    await expect(row).to_have_attribute("data-attention", "stalled")
    await expect(row.locator(".vm-flag")).to_have_text(re.compile(r"^Stalled: no update for \d+ days?\b"))
    # The last numbers stay readable, marked as stale.
    await expect(row.locator(".job-rate")).to_have_text("11.5 MiB/s")
    await expect(row.locator(".c-rate .stale-tag")).to_be_visible()
    await expect(row.locator(".c-eta .stale-tag")).to_be_visible()
    await expect(page.locator('[data-figure="stalled"]')).to_have_attribute("data-value", "1")
    await expect(page.locator('[data-figure="replicating"]')).to_have_attribute("data-value", "0")
    # A stalled job's speed is not counted as live throughput.
    await expect(page.locator('[data-figure="throughputBps"]')).to_have_attribute("data-value", "0")

    # The appliance reports again: the mark goes.
    await set_job_activity(seeded, JOB_ID, local_now())
    await expect(row).to_have_attribute("data-attention", "active", timeout=TIMEOUT_MS)
    await expect(row.locator(".vm-flag")).to_be_hidden()
    await expect(row.locator(".c-rate .stale-tag")).to_be_hidden()
    await expect(page.locator('[data-figure="stalled"]')).to_have_attribute("data-value", "0")
    await expect(page.locator('[data-figure="replicating"]')).to_have_attribute("data-value", "1")
    await expect(page.locator('[data-figure="throughputBps"]')).to_have_attribute("data-value", str(JOB_SPEED))

    # The detail follows the appliance's last poll too.
    await row.locator("a.vm-link").click()
    job = page.locator("#detail-current-job")
    await expect(job.locator(".job-id")).to_have_text(JOB_ID)
    await expect(job.locator(".current-job")).to_have_attribute("data-attention", "active")
    await expect(job.locator(".job-stall")).to_be_hidden()
    await expect(job.locator(".job-running")).to_have_text(re.compile(r"^· running for \d+ days?\b"))

    # Silent for seven and a half minutes: stalled again, in both views.
    await set_job_activity(seeded, JOB_ID, local_now(-(7 * 60 + 30)))
    await expect(job.locator(".job-stall")).to_contain_text("Stalled: no update for 7 min", timeout=TIMEOUT_MS)
    await expect(job.locator(".current-job")).to_have_attribute("data-attention", "stalled")
    await expect(job.locator(".stat .stale-tag").first).to_be_visible()
    await page.click("#detail-back")
    await expect(row).to_have_attribute("data-attention", "stalled")
    await expect(row.locator(".vm-flag")).to_have_text("Stalled: no update for 7 min")

    # Going stale needs no write: three seconds short of the threshold, the clock alone marks it.
    await set_job_activity(seeded, JOB_ID, local_now(-(DEFAULT_STALL_AFTER_S - 3)))
    await expect(row).to_have_attribute("data-attention", "active", timeout=TIMEOUT_MS)
    await expect(row).to_have_attribute("data-attention", "stalled", timeout=15_000)
    await expect(row.locator(".vm-flag")).to_have_text("Stalled: no update for 2 min")


# ---- the fleet summary -----------------------------------------------------------------------


def expected_summary(rows: Sequence[Sequence[Any]], now: dt.datetime, stall_after_s: float) -> dict[str, float | None]:
    """The summary strip's figures computed from database rows (static/js/fleet.js has the definitions)."""
    figures: dict[str, Any] = {
        "failed": 0,
        "stalled": 0,
        "replicating": 0,
        "readyForFailover": 0,
        "throughputBps": 0,
        "remainingBytes": 0,
        "lastEtaS": None,
    }
    for status, job_status, done, total, speed, mbps, eta, polled, updated in rows:
        running = job_status is not None and job_status not in ENDED and job_status != "pending"
        last_seen = polled or updated
        stalled = running and last_seen is not None and (now - last_seen).total_seconds() > stall_after_s
        if status == "ready_for_failover":
            figures["readyForFailover"] += 1
        if job_status in FAILED or (status == "failed" and not running):
            figures["failed"] += 1
        elif stalled:
            figures["stalled"] += 1
        elif running:
            figures["replicating"] += 1
            rate = speed if speed and speed > 0 else (float(mbps) * MiB if mbps and float(mbps) > 0 else 0)
            figures["throughputBps"] += rate
            left = eta
            if left is None and rate and total:
                left = max(0, -(-(total - done) // rate))
            if left is not None and (figures["lastEtaS"] is None or left > figures["lastEtaS"]):
                figures["lastEtaS"] = left
        if running and total and total > 0:
            figures["remainingBytes"] += max(0, total - (done or 0))
    return figures


async def expect_summary(page: Page, store: Store) -> dict[str, float | None]:
    async with store.snapshot() as reader:
        rows = await reader.fetch_all(
            "SELECT c.current_status, j.status, j.bytes_transferred, j.total_bytes, j.transfer_speed_bps,"
            " j.vma_throughput_mbps, j.vma_eta_seconds, j.vma_last_poll_at, j.updated_at"
            " FROM vm_replication_contexts c LEFT JOIN replication_jobs j ON j.id = c.current_job_id"
        )
    expected = expected_summary(rows, local_now(), DEFAULT_STALL_AFTER_S)
    for key, value in expected.items():
        shown = "" if value is None else str(int(value)) if float(value).is_integer() else str(value)
        await expect(page.locator(f'[data-figure="{key}"]')).to_have_attribute("data-value", shown, timeout=TIMEOUT_MS)
    return expected


async def test_fleet_summary_matches_the_database_and_follows_writes(
    page: Page, server: LiveServer, seeded: Store
) -> None:
    fresh = local_now()
    await set_job_activity(seeded, JOB_ID, fresh)
    await add_vm(
        seeded,
        "web-01",
        "replicating",
        {
            "bytes_transferred": 2 * GiB,
            "total_bytes": 10 * GiB,
            "transfer_speed_bps": 50 * MiB,
            "vma_eta_seconds": 164,
            "vma_last_poll_at": fresh,
            "updated_at": fresh,
        },
    )
    await add_vm(
        seeded,
        "db-02",  # stalled: silent for ten minutes
        "replicating",
        {
            "bytes_transferred": 30 * GiB,
            "total_bytes": 100 * GiB,
            "transfer_speed_bps": 80 * MiB,
            "vma_eta_seconds": 900,
            "vma_last_poll_at": local_now(-600),
            "updated_at": local_now(-600),
        },
    )
    await add_vm(seeded, "crm-03", "failed")
    await add_vm(seeded, "dc-04", "ready_for_failover")
    await sign_in(page, server, make_token())
    await expect(page.locator("#vm-list tr[data-vm]")).to_have_count(6)

    expected = await expect_summary(page, seeded)
    assert expected == {
        "failed": 1,
        "stalled": 1,
        "replicating": 2,
        "readyForFailover": 1,
        "throughputBps": JOB_SPEED + 50 * MiB,
        "remainingBytes": JOB_LEFT + 8 * GiB + 70 * GiB,
        "lastEtaS": JOB_ETA,
    }
    await expect(page.locator('[data-figure="failed"] .figure-value')).to_have_text("1")
    await expect(page.locator('[data-figure="remainingBytes"] .figure-value')).to_have_text("96.3 GiB")
    await expect(page.locator('[data-figure="lastEtaS"] .figure-value')).to_have_text("27m 11s")
    # The default order: failed, stalled, replicating, the rest.
    await expect_order(page, ["crm-03", "db-02", "pgtest1", "web-01", "dc-04", "pgtest2"], visible=False)

    # Every figure follows the writes: db-02 reports again, web-01 moves on, pgtest1's job ends.
    now = local_now()
    await execute(
        seeded,
        "UPDATE replication_jobs SET bytes_transferred = %s, transfer_speed_bps = %s, vma_eta_seconds = %s,"
        " vma_last_poll_at = %s, updated_at = %s WHERE id = %s",
        [40 * GiB, 90 * MiB, 2000, to_db(now, seeded.engine), to_db(now, seeded.engine), "job-db-02"],
    )
    await execute(
        seeded,
        "UPDATE replication_jobs SET bytes_transferred = %s, vma_eta_seconds = %s WHERE id = %s",
        [6 * GiB, 80, "job-web-01"],
    )
    await execute(
        seeded,
        "UPDATE vm_replication_contexts SET current_job_id = NULL, current_status = 'ready_for_failover'"
        " WHERE vm_name = 'pgtest1'",
    )
    await expect(page.locator('[data-figure="readyForFailover"]')).to_have_attribute(
        "data-value", "2", timeout=TIMEOUT_MS
    )
    expected = await expect_summary(page, seeded)
    assert expected["stalled"] == 0 and expected["replicating"] == 2 and expected["lastEtaS"] == 2000
    await expect_order(page, ["crm-03", "db-02", "web-01", "dc-04", "pgtest1", "pgtest2"], visible=False)


# ---- sort, filter and search in the URL -----------------------------------------------------


async def test_sort_filter_and_search_live_in_the_url_over_reload_and_history(
    page: Page, server: LiveServer, seeded: Store
) -> None:
    await add_vm(seeded, "aaa-idle", "discovered")
    await sign_in(page, server, make_token())
    await expect(page.locator("#vm-list tr[data-vm]")).to_have_count(3)
    # Default: the stalled pgtest1 first, then the rest by name.
    await expect_order(page, ["pgtest1", "aaa-idle", "pgtest2"], visible=False)
    await expect(page.locator("#vm-table th[aria-sort]")).to_have_count(0)

    name = page.locator('#vm-table th[data-sort="name"]')
    await name.locator("button").click()
    await expect(page).to_have_url(server.url + "/#/?sort=name")
    await expect(name).to_have_attribute("aria-sort", "ascending")
    await expect_order(page, ["aaa-idle", "pgtest1", "pgtest2"], visible=False)
    await name.locator("button").click()
    await expect(page).to_have_url(server.url + "/#/?sort=-name")
    await expect(name).to_have_attribute("aria-sort", "descending")
    await expect(page.locator("#sort-order")).to_have_value("-name")
    await expect_order(page, ["pgtest2", "pgtest1", "aaa-idle"], visible=False)

    await page.fill("#search", "pg")
    await expect(page).to_have_url(server.url + "/#/?q=pg&sort=-name")
    await page.select_option("#status-filter", "replicating")
    await expect(page).to_have_url(server.url + "/#/?status=replicating&q=pg&sort=-name")
    await expect_order(page, ["pgtest1"], visible=True)

    # A reload (or the shared link) shows the same view.
    await page.reload()
    await expect_state(page, "live")
    await expect(page.locator('[data-vm="pgtest1"]')).to_be_visible()
    await expect(page.locator("#status-filter")).to_have_value("replicating")
    await expect(page.locator("#search")).to_have_value("pg")
    await expect(page.locator("#sort-order")).to_have_value("-name")
    await expect(name).to_have_attribute("aria-sort", "descending")
    await expect_order(page, ["pgtest1"], visible=True)
    await expect_order(page, ["pgtest2", "pgtest1", "aaa-idle"], visible=False)

    # Into a VM and back by its link: the view is kept.
    await page.locator('[data-vm="pgtest1"] a.vm-link').click()
    await expect(page.locator("#detail-title")).to_have_text("pgtest1")
    await expect(page.locator("#detail-back")).to_have_attribute("href", "#/?status=replicating&q=pg&sort=-name")
    await page.click("#detail-back")
    await expect(page).to_have_url(server.url + "/#/?status=replicating&q=pg&sort=-name")
    await expect_order(page, ["pgtest1"], visible=True)

    # Back through the history: detail, the filtered view, then before the filter (the search
    # replaced its entry rather than adding one per key), then the ascending sort.
    await page.go_back()
    await expect(page.locator("#detail-title")).to_have_text("pgtest1")
    await page.go_back()
    await expect(page.locator("#dashboard")).to_be_visible()
    await expect(page).to_have_url(server.url + "/#/?status=replicating&q=pg&sort=-name")
    await page.go_back()
    await expect(page).to_have_url(server.url + "/#/?q=pg&sort=-name")
    await expect(page.locator("#status-filter")).to_have_value("")
    await expect(page.locator('[data-vm="pgtest2"]')).to_be_visible()
    await expect_order(page, ["pgtest2", "pgtest1"], visible=True)
    await page.go_back()
    await expect(page).to_have_url(server.url + "/#/?sort=name")
    await expect(page.locator("#search")).to_have_value("")
    await expect(name).to_have_attribute("aria-sort", "ascending")
    await expect_order(page, ["aaa-idle", "pgtest1", "pgtest2"], visible=True)
    await page.go_forward()
    await expect(page).to_have_url(server.url + "/#/?q=pg&sort=-name")
    await expect_order(page, ["pgtest2", "pgtest1"], visible=True)

    # A third click on the heading returns to the default order and a plain URL.
    await name.locator("button").click()
    await expect(page).to_have_url(server.url + "/#/?q=pg")
    await expect(page.locator("#vm-table th[aria-sort]")).to_have_count(0)


# ---- rows for screen readers and keyboards ---------------------------------------------------


async def focused_vm(page: Page) -> str | None:
    vm: str | None = await page.evaluate(
        "document.activeElement && document.activeElement.matches('a.vm-link')"
        " ? document.activeElement.closest('tr').dataset.vm : null"
    )
    return vm


async def test_each_row_is_a_table_row_whose_only_link_is_the_vm_name_and_arrows_move_between_rows(
    page: Page, server: LiveServer, seeded: Store
) -> None:
    await add_vm(seeded, "aaa-idle", "discovered")
    await sign_in(page, server, make_token())
    await expect(page.locator("#vm-list tr[data-vm]")).to_have_count(3)

    # A table with column headers; each row is headed by the VM name, which is its one link,
    # so a screen reader says "pgtest1, link" and reads the cells under their headers.
    table = page.get_by_role("table")
    await expect(table.get_by_role("columnheader")).to_have_count(7)
    await expect(table.get_by_role("row")).to_have_count(4)  # the header row and three VMs
    await expect(table.get_by_role("rowheader", name=re.compile(r"^pgtest1 windows"))).to_have_count(1)
    await expect(table.get_by_role("link")).to_have_count(3)
    await expect(table.get_by_role("link", name="pgtest1", exact=True)).to_have_attribute("href", "#/vm/pgtest1")
    await expect(table.get_by_role("columnheader", name="Progress")).to_have_count(1)

    # Arrows, Home and End move between rows (default order: pgtest1, aaa-idle, pgtest2).
    await page.locator('[data-vm="pgtest1"] a.vm-link').focus()
    await page.keyboard.press("ArrowDown")
    assert await focused_vm(page) == "aaa-idle"
    await page.keyboard.press("End")
    assert await focused_vm(page) == "pgtest2"
    await page.keyboard.press("ArrowDown")
    assert await focused_vm(page) == "pgtest2"
    await page.keyboard.press("Home")
    assert await focused_vm(page) == "pgtest1"
    await page.keyboard.press("ArrowUp")
    assert await focused_vm(page) == "pgtest1"

    # Hidden rows are skipped; Space opens a row; coming back focuses it again.
    await page.fill("#search", "pg")
    await expect(page.locator('[data-vm="aaa-idle"]')).to_be_hidden()
    await page.locator('[data-vm="pgtest1"] a.vm-link').focus()
    await page.keyboard.press("ArrowDown")
    assert await focused_vm(page) == "pgtest2"
    await page.keyboard.press(" ")
    await expect(page.locator("#detail-title")).to_have_text("pgtest2")
    await expect(page.locator("#detail-title")).to_be_focused()
    await page.click("#detail-back")
    await expect(page.locator('[data-vm="pgtest2"] a.vm-link')).to_be_focused()


# ---- not live --------------------------------------------------------------------------------


async def test_data_is_dimmed_with_the_last_update_time_while_disconnected(page: Page, server: LiveServer) -> None:
    await sign_in(page, server, make_token())
    main, age, table = page.locator("#main"), page.locator("#data-age"), page.locator("#vm-table")
    await expect(page.locator('[data-vm="pgtest1"] .job-percent')).to_have_text("49.3%")
    await expect(main).not_to_have_attribute("data-stale", "")
    await expect(age).to_be_hidden()
    await expect(table).to_have_css("opacity", "1")

    await server.stop()
    await expect_state(page, "reconnecting")
    await expect(main).to_have_attribute("data-stale", "")
    await expect(age).to_be_visible()
    await expect(age).to_have_text(re.compile(r"^Not live: last update \d\d:\d\d:\d\d \S+.* \(just now\)$"))
    await expect(table).to_have_css("opacity", "0.5")
    await expect(page.locator("#fleet-summary")).to_have_css("opacity", "0.5")
    # The last values stay readable.
    await expect(page.locator('[data-vm="pgtest1"] .job-percent')).to_have_text("49.3%")

    await server.start()
    await expect_state(page, "live", timeout=30_000)
    await expect(main).not_to_have_attribute("data-stale", "")
    await expect(age).to_be_hidden()
    await expect(table).to_have_css("opacity", "1")


# ---- with the server's last_job and gui-settings ------------------------------------------


async def test_failed_job_reason_on_the_dashboard_and_in_the_detail_after_a_database_write(
    page: Page, server: LiveServer, seeded: Store
) -> None:
    message = "QueryChangedDiskAreas failed: FileFault: the change tracking file is corrupt" + " (disk-2000)" * 12
    await sign_in(page, server, make_token())
    row = page.locator('[data-vm="pgtest2"]')
    await expect(row).to_have_attribute("data-attention", "idle")

    # A job runs on pgtest2 and fails, as the appliance records it.
    await add_job_then_fail(seeded, "pgtest2", "job-pgtest2-failed", message)
    await expect(row).to_have_attribute("data-attention", "failed", timeout=TIMEOUT_MS)
    reason = row.locator(".fail-reason")
    await expect(reason).to_have_text(message)
    # One line on the dashboard, the whole text on hover (and to screen readers).
    assert await reason.evaluate("el => el.scrollWidth > el.clientWidth")
    link = row.locator("a.vm-link")
    await expect(link).to_have_attribute("title", f"Failed: {message}")
    await expect(link).to_have_accessible_description(message)
    await expect_order(page, ["pgtest2", "pgtest1"], visible=False)
    await expect(page.locator('[data-figure="failed"]')).to_have_attribute("data-value", "1")

    await link.click()
    failure = page.locator("#detail-failure")
    await expect(failure).to_be_visible()
    await expect(page.locator("#detail-failure-message")).to_have_text(message)
    await expect(page.locator("#detail-failure-when")).to_contain_text("Job job-pgtest2-failed failed")
    # Above the history.
    assert await page.evaluate(
        "document.querySelector('#detail-failure').compareDocumentPosition("
        "document.querySelector('#detail-job-history')) & Node.DOCUMENT_POSITION_FOLLOWING"
    )


async def add_job_then_fail(store: Store, vm_name: str, job_id: str, message: str) -> None:
    context_id = "ctx-pgtest2-20250909-120102"
    now = local_now()
    job = {
        **SEED_CURRENT_JOB,
        "id": job_id,
        "vm_context_id": context_id,
        "source_vm_name": vm_name,
        "nbd_export_name": f"migration-vol-{job_id}",
        "created_at": local_now(-300),
        "updated_at": now,
        "vma_last_poll_at": now,
    }
    async with store.transaction() as writer:
        await insert_row(writer, "replication_jobs", for_engine(job, store.engine))
        await writer.execute(
            "UPDATE vm_replication_contexts SET current_status = 'replicating', current_job_id = %s,"
            " total_jobs_run = total_jobs_run + 1 WHERE context_id = %s",
            [job_id, context_id],
        )
    async with store.transaction() as writer:
        await writer.execute(
            "UPDATE replication_jobs SET status = 'failed', error_message = %s, completed_at = %s WHERE id = %s",
            [message, to_db(now, store.engine), job_id],
        )
        await writer.execute(
            "UPDATE vm_replication_contexts SET current_status = 'failed', current_job_id = NULL,"
            " failed_jobs = failed_jobs + 1 WHERE context_id = %s",
            [context_id],
        )


async def test_stall_threshold_comes_from_the_server(
    page: Page, serve: Serve, database_url: str, seeded: Store
) -> None:
    # The key's name follows the server side's config.yaml (issue 11: "configurable in config.yaml").
    server = await serve(browser_config(database_url, gui={"stall_after_s": 900}))
    await set_job_activity(seeded, JOB_ID, local_now(-600))
    await sign_in(page, server, make_token())
    row = page.locator('[data-vm="pgtest1"]')
    # Ten minutes of silence is within a fifteen-minute threshold.
    await expect(row).to_have_attribute("data-attention", "active")
    await set_job_activity(seeded, JOB_ID, local_now(-1000))
    await expect(row).to_have_attribute("data-attention", "stalled", timeout=TIMEOUT_MS)
