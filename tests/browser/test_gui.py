"""The GUI in Debian's Chromium against the real service and MariaDB.

Sign-in, the dashboard, live progress, the VM detail, reconnecting after a
server restart, refused and expired tokens, and a database outage.
"""

from __future__ import annotations

import time

import pytest
from playwright.async_api import expect

from pushsvc.demo.seed import SEED_CONTEXT, SEED_CURRENT_JOB, SEED_DISK, ms
from pushsvc.store.writes import for_engine, insert_row

from ..helpers import make_token
from .conftest import POLL_INTERVAL, TIMEOUT_MS, browser_config, execute, expect_state, sign_in

pytestmark = pytest.mark.browser

JOB_ID = SEED_CURRENT_JOB["id"]
TOTAL = SEED_CURRENT_JOB["total_bytes"]

PGTEST2_JOB = {
    **SEED_CURRENT_JOB,
    "id": "job-20250909-120500",
    "vm_context_id": "ctx-pgtest2-20250909-120102",
    "source_vm_id": "4205a1b2-7c3d-8e9f-0a1b-2c3d4e5f6a7b",
    "source_vm_name": "pgtest2",
    "source_vm_path": "/DatabanxDC/vm/pgtest2",
    "progress_percent": 12.5,
    "bytes_transferred": 4831838208,
    "nbd_export_name": "migration-vol-7c0e4a51-1f0b-4d53-8b7a-3b1d2e4f5a6c",
    "created_at": ms("2025-09-09 12:05:00.120"),
    "updated_at": ms("2025-09-09 12:12:07.500"),
    "started_at": ms("2025-09-09 12:05:00.400"),
}


async def give_pgtest2_a_job(store) -> None:
    """pgtest2 starts replicating too, so there are two bars and only one may move."""
    async with store.transaction() as writer:
        await insert_row(writer, "replication_jobs", for_engine(PGTEST2_JOB, store.engine))
        await writer.execute(
            "UPDATE vm_replication_contexts SET current_status = 'replicating', current_job_id = %s, total_jobs_run = 1"
            " WHERE vm_name = 'pgtest2'",
            [PGTEST2_JOB["id"]],
        )


async def watch_text(page, selector: str, expected: str) -> None:
    """Record in the page (Date.now()) the moment ``selector``'s text becomes ``expected``."""
    await page.evaluate(
        """([selector, expected]) => {
            window.__changedAt = null;
            const el = document.querySelector(selector);
            const check = () => {
                if (window.__changedAt === null && el.textContent === expected) {
                    window.__changedAt = Date.now();
                    observer.disconnect();
                }
            };
            const observer = new MutationObserver(check);
            observer.observe(el, { childList: true, characterData: true, subtree: true });
        }""",
        [selector, expected],
    )


async def progress_value(page, selector: str) -> float:
    return await page.eval_on_selector(selector, "el => el.value")


# ---- sign-in and the dashboard ---------------------------------------------------


async def test_sign_in_lists_the_vms(page, server):
    await page.goto(server.url + "/")
    await expect(page.locator("#signin")).to_be_visible()
    await expect(page.locator("#dashboard")).to_be_hidden()
    await expect_state(page, "offline")

    await page.fill("#token-input", "Bearer " + make_token())  # pasted with its scheme: still accepted
    await page.click("#signin-submit")

    await expect_state(page, "live")
    await expect(page.locator("#signin-view")).to_be_hidden()
    await expect(page.locator("#dashboard")).to_be_visible()
    await expect(page.locator("#sign-out")).to_be_visible()
    await expect(page.locator("#change-token")).to_be_visible()
    rows = page.locator("#vm-list tr[data-vm]")
    await expect(rows).to_have_count(2)
    assert await rows.evaluate_all("rows => rows.map(row => row.dataset.vm)") == ["pgtest1", "pgtest2"]
    await expect(page.locator("#dashboard-summary")).to_have_text("2 VMs")

    pgtest1 = page.locator('[data-vm="pgtest1"]')
    await expect(pgtest1.locator("a.vm-link")).to_have_attribute("href", "#/vm/pgtest1")
    await expect(pgtest1.locator(".badge")).to_have_text("Replicating")
    await expect(pgtest1.locator(".job-percent")).to_have_text("49.3%")
    await expect(pgtest1.locator(".job-bytes")).to_have_text("17.8 GiB of 36.0 GiB")
    await expect(pgtest1.locator(".job-rate")).to_have_text("11.5 MiB/s")
    await expect(pgtest1.locator(".job-eta")).to_have_text("27m 11s")
    await expect(pgtest1.locator(".job-op")).to_have_text("Transferring Data")
    assert await progress_value(page, '[data-vm="pgtest1"] progress.job-progress') == pytest.approx(49.30555555555556)

    pgtest2 = page.locator('[data-vm="pgtest2"]')
    await expect(pgtest2.locator(".badge")).to_have_text("Discovered")
    await expect(pgtest2.locator("progress.job-progress")).to_have_count(0)
    await expect(pgtest2.locator(".idle")).to_have_text("No active job")

    stats = await page.evaluate("window.pushsvc.stats")
    assert stats["snapshots"] == 1 and stats["renders"] >= 1 and stats["resyncs"] == 0

    # Signing out forgets the token: a reload asks for it again.
    await page.click("#sign-out")
    await expect(page.locator("#signin")).to_be_visible()
    await expect_state(page, "offline")
    await page.reload()
    await expect(page.locator("#signin")).to_be_visible()


async def test_token_survives_a_reload_of_the_tab(page, server):
    await sign_in(page, server, make_token())
    await page.reload()
    await expect_state(page, "live")
    await expect(page.locator('[data-vm="pgtest1"] .job-percent')).to_have_text("49.3%")


async def test_progress_write_moves_the_right_bar_within_two_poll_intervals(page, server, seeded):
    await give_pgtest2_a_job(seeded)
    await sign_in(page, server, make_token())
    await expect(page.locator('[data-vm="pgtest2"] .job-percent')).to_have_text("12.5%", timeout=TIMEOUT_MS)
    await expect(page.locator('[data-vm="pgtest1"] .job-percent')).to_have_text("49.3%")

    done = int(TOTAL * 0.635)
    await watch_text(page, '[data-vm="pgtest1"] .job-percent', "63.5%")
    await execute(
        seeded,
        "UPDATE replication_jobs SET progress_percent = %s, bytes_transferred = %s WHERE id = %s",
        [63.5, done, JOB_ID],
    )
    committed = time.time()
    await page.wait_for_function("() => window.__changedAt !== null", timeout=TIMEOUT_MS)
    latency = await page.evaluate("window.__changedAt") / 1000 - committed
    assert latency <= 2 * POLL_INTERVAL, f"the bar moved {latency:.3f} s after the commit"

    pgtest1 = page.locator('[data-vm="pgtest1"]')
    await expect(pgtest1.locator(".job-bytes")).to_have_text("22.9 GiB of 36.0 GiB")
    assert await progress_value(page, '[data-vm="pgtest1"] progress.job-progress') == 63.5
    # The other VM's bar did not move.
    await expect(page.locator('[data-vm="pgtest2"] .job-percent')).to_have_text("12.5%")
    assert await progress_value(page, '[data-vm="pgtest2"] progress.job-progress') == 12.5

    # The job ends: the bar goes, the row says so.
    await execute(
        seeded,
        "UPDATE vm_replication_contexts SET current_job_id = NULL, current_status = 'ready_for_failover'"
        " WHERE vm_name = 'pgtest1'",
    )
    await expect(pgtest1.locator("progress.job-progress")).to_have_count(0, timeout=TIMEOUT_MS)
    await expect(pgtest1.locator(".idle")).to_have_text("No active job")
    await expect(pgtest1.locator(".badge")).to_have_text("Ready for failover")
    await expect(pgtest1.locator(".job-eta")).to_have_text("\u2014")
    stats = await page.evaluate("window.pushsvc.stats")
    assert stats["deltas"] >= 2 and stats["resyncs"] == 0


async def test_new_and_deleted_vms_appear_and_disappear(page, server, seeded):
    # Sorted by name (the default order puts VMs that need attention first).
    await sign_in(page, server, make_token(), path="/#/?sort=name")
    await expect(page.locator("#vm-list tr[data-vm]")).to_have_count(2)
    context = {
        **{key: value for key, value in SEED_CONTEXT.items() if key != "updated_at"},
        "context_id": "ctx-aaa-first-20250909",
        "vm_name": "aaa-first",
        "vmware_vm_id": "4205ffff-0000",
        "current_status": "discovered",
        "total_jobs_run": 0,
    }
    async with seeded.transaction() as writer:
        await insert_row(writer, "vm_replication_contexts", for_engine(context, seeded.engine))
    rows = page.locator("#vm-list tr[data-vm]")
    await expect(rows).to_have_count(3, timeout=TIMEOUT_MS)
    assert await rows.evaluate_all("rows => rows.map(row => row.dataset.vm)") == ["aaa-first", "pgtest1", "pgtest2"]
    await expect(page.locator("#dashboard-summary")).to_have_text("3 VMs")

    await execute(seeded, "DELETE FROM vm_replication_contexts WHERE vm_name = 'pgtest2'")
    await expect(page.locator('[data-vm="pgtest2"]')).to_have_count(0, timeout=TIMEOUT_MS)
    await expect(page.locator("#dashboard-summary")).to_have_text("2 VMs")


async def test_search_and_status_filter(page, server):
    await sign_in(page, server, make_token())
    pgtest1, pgtest2 = page.locator('[data-vm="pgtest1"]'), page.locator('[data-vm="pgtest2"]')
    await expect(pgtest2).to_be_visible()

    await page.fill("#search", "TEST2")
    await expect(pgtest1).to_be_hidden()
    await expect(pgtest2).to_be_visible()
    await expect(page.locator("#dashboard-summary")).to_have_text("Showing 1 of 2 VMs")

    await page.fill("#search", "")
    await page.select_option("#status-filter", "replicating")
    await expect(pgtest1).to_be_visible()
    await expect(pgtest2).to_be_hidden()

    await page.fill("#search", "pgtest2")
    await expect(page.locator("#dashboard-empty")).to_have_text("No VMs match the filter.")
    await expect(page.locator("#dashboard-empty")).to_be_visible()

    # The "All" chip clears the status filter.
    await page.click('#status-counts button[data-filter=""]')
    await expect(page.locator("#status-filter")).to_have_value("")
    await expect(pgtest2).to_be_visible()
    await expect(page.locator('#status-counts button[data-filter="replicating"] .chip-count')).to_have_text("1")


# ---- the VM detail ---------------------------------------------------------------------


async def test_detail_shows_job_disks_and_history_and_follows_writes(page, server, seeded):
    await sign_in(page, server, make_token())
    await page.click('[data-vm="pgtest1"]')
    await expect(page).to_have_url(server.url + "/#/vm/pgtest1")
    await expect(page.locator("#vm-detail")).to_be_visible()
    await expect(page.locator("#dashboard")).to_be_hidden()
    await expect(page.locator("#detail-title")).to_have_text("pgtest1")
    await expect(page.locator("#detail-title-badge")).to_have_text("Replicating")

    job = page.locator("#detail-current-job")
    await expect(job.locator(".job-id")).to_have_text(JOB_ID)
    await expect(job.locator(".job-percent")).to_have_text("49.3%")
    await expect(job.locator(".job-bytes")).to_have_text("17.8 GiB of 36.0 GiB")
    await expect(job.locator(".job-op")).to_have_text("Transferring Data")

    disk = page.locator('#detail-disks li[data-disk="disk-2000"]')
    await expect(disk).to_be_visible()
    await expect(page.locator("#detail-disks li[data-disk]")).to_have_count(1)
    await expect(disk.locator(".disk-title")).to_have_text("Hard disk 1")
    await expect(disk.locator(".disk-percent")).to_have_text("0.0% synced")
    await expect(disk).to_contain_text("vsanDatastore")

    history = page.locator("#detail-job-history tbody tr")
    await expect(history).to_have_count(1)
    await expect(history.first).to_contain_text("job-20250909-113839")
    await expect(history.first).to_contain_text("Completed")
    await expect(history.first).to_contain_text("100.0%")
    cbt = page.locator("#detail-cbt-history tbody tr")
    await expect(cbt).to_have_count(1)
    await expect(cbt.first).to_contain_text("disk-2000")
    await expect(cbt.first).to_contain_text(JOB_ID)
    await expect(page.locator("#detail-not-found")).to_be_hidden()

    # The disk starts syncing and the job moves on: both show up without a reload.
    await execute(
        seeded,
        "UPDATE vm_disks SET sync_status = 'syncing', sync_progress_percent = 40, bytes_synced = %s WHERE disk_id = %s",
        [int(SEED_DISK["capacity_bytes"] * 0.4), "disk-2000"],
    )
    await execute(seeded, "UPDATE replication_jobs SET progress_percent = 52.25 WHERE id = %s", [JOB_ID])
    await expect(disk.locator(".disk-percent")).to_have_text("40.0% synced", timeout=TIMEOUT_MS)
    await expect(disk.locator(".badge")).to_have_text("Syncing")
    assert await progress_value(page, '#detail-disks li[data-disk="disk-2000"] progress.disk-progress') == 40
    await expect(job.locator(".job-percent")).to_have_text("52.3%", timeout=TIMEOUT_MS)

    # Back to the dashboard: the row reflects the same write.
    await page.click("#detail-back")
    await expect(page.locator("#dashboard")).to_be_visible()
    await expect(page.locator('[data-vm="pgtest1"] .job-percent')).to_have_text("52.3%", timeout=TIMEOUT_MS)


async def test_detail_of_an_unknown_vm_says_not_found_and_updates_when_it_appears(page, server, seeded):
    await sign_in(page, server, make_token(), path="/#/vm/pgtest3")
    await expect(page.locator("#detail-not-found")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(page.locator("#detail-body")).to_be_hidden()

    context = {
        **{key: value for key, value in SEED_CONTEXT.items() if key != "updated_at"},
        "context_id": "ctx-pgtest3-20250909-130000",
        "vm_name": "pgtest3",
        "vmware_vm_id": "4205aaaa-0003",
        "vm_path": "/DatabanxDC/vm/pgtest3",
        "current_status": "discovered",
        "total_jobs_run": 0,
    }
    async with seeded.transaction() as writer:
        await insert_row(writer, "vm_replication_contexts", for_engine(context, seeded.engine))
    await expect(page.locator("#detail-body")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(page.locator("#detail-not-found")).to_be_hidden()
    await expect(page.locator("#detail-current-job")).to_contain_text("No active job")
    await expect(page.locator("#detail-disks-empty")).to_be_visible()
    await expect(page.locator("#detail-job-history-empty")).to_be_visible()
    await expect(page.locator("#detail-cbt-history-empty")).to_be_visible()


# ---- connection ------------------------------------------------------------------------


async def test_server_restart_shows_reconnecting_then_recovers_without_reload(page, server, seeded):
    await sign_in(page, server, make_token())
    await expect(page.locator('[data-vm="pgtest1"] .job-percent')).to_have_text("49.3%")
    await page.evaluate("window.__marker = 'same page'")
    snapshots = (await page.evaluate("window.pushsvc.stats"))["snapshots"]
    port = server.port

    await server.stop()
    await expect_state(page, "reconnecting")
    # The last data stays on screen meanwhile.
    await expect(page.locator('[data-vm="pgtest1"] .job-percent')).to_have_text("49.3%")
    await execute(seeded, "UPDATE replication_jobs SET progress_percent = 71.0 WHERE id = %s", [JOB_ID])

    await server.start()
    assert server.port == port
    await expect_state(page, "live", timeout=30_000)
    assert await page.evaluate("window.__marker") == "same page"
    # The restarted service has a new epoch: the page got a fresh snapshot with the write made meanwhile.
    await expect(page.locator('[data-vm="pgtest1"] .job-percent')).to_have_text("71.0%", timeout=TIMEOUT_MS)
    assert (await page.evaluate("window.pushsvc.stats"))["snapshots"] > snapshots
    # And live updates flow again.
    await execute(seeded, "UPDATE replication_jobs SET progress_percent = 72.5 WHERE id = %s", [JOB_ID])
    await expect(page.locator('[data-vm="pgtest1"] .job-percent')).to_have_text("72.5%", timeout=TIMEOUT_MS)
    assert await page.evaluate("window.__marker") == "same page"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("not-a-token", id="garbage"),
        pytest.param(make_token(secret="another-secret-" + "y" * 60), id="wrong-key"),
        pytest.param(make_token(ttl=-3600), id="long-expired"),
    ],
)
async def test_refused_token_shows_the_signin_error(page, server, token):
    await page.goto(server.url + "/")
    await page.fill("#token-input", token)
    await page.click("#signin-submit")
    error = page.locator("#signin-error")
    await expect(error).to_have_text("The token was refused", timeout=TIMEOUT_MS)
    await expect(error).to_be_visible()
    await expect(page.locator("#signin")).to_be_visible()
    await expect(page.locator("#dashboard")).to_be_hidden()
    await expect(page.locator("#sign-out")).to_be_hidden()
    await expect_state(page, "offline")
    assert await page.evaluate("sessionStorage.length") == 0

    # A good token then works from the same form.
    await page.fill("#token-input", make_token())
    await page.click("#signin-submit")
    await expect_state(page, "live")
    await expect(error).to_be_hidden()
    await expect(page.locator('[data-vm="pgtest1"]')).to_be_visible()


async def test_empty_token_is_not_sent(page, server):
    await page.goto(server.url + "/")
    await page.click("#signin-submit")
    await expect(page.locator("#signin-error")).to_have_text("Paste a token first")
    await expect_state(page, "offline")


async def test_token_expiring_on_a_live_socket_asks_for_a_new_one(page, server):
    # Valid for two more seconds: accepted, then the server closes with 4002 at exp.
    await sign_in(page, server, make_token(ttl=2))
    await expect(page.locator('[data-vm="pgtest1"]')).to_be_visible()
    error = page.locator("#signin-error")
    await expect(error).to_have_text("Your token has expired; paste a new one", timeout=TIMEOUT_MS)
    await expect(page.locator("#signin")).to_be_visible()
    await expect(page.locator("#dashboard")).to_be_hidden()
    await expect_state(page, "offline")


async def test_database_outage_shows_database_unavailable_then_recovers(page, serve, seeded, db_proxy):
    proxy, url = db_proxy
    server = await serve(browser_config(url, poller={"interval": POLL_INTERVAL, "backoff_max": 0.4}))
    await sign_in(page, server, make_token())
    await expect(page.locator('[data-vm="pgtest1"] .job-percent')).to_have_text("49.3%")
    banner = page.locator("#db-banner")
    await expect(banner).to_be_hidden()

    await proxy.cut()
    await expect_state(page, "db-unavailable", timeout=TIMEOUT_MS)
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("The database has been unavailable since")
    # The last data stays on screen; the appliance keeps writing meanwhile.
    await expect(page.locator('[data-vm="pgtest1"] .job-percent')).to_have_text("49.3%")
    await execute(seeded, "UPDATE replication_jobs SET progress_percent = 80.0 WHERE id = %s", [JOB_ID])

    await proxy.restore()
    await expect_state(page, "live", timeout=TIMEOUT_MS)
    await expect(banner).to_be_hidden()
    await expect(page.locator('[data-vm="pgtest1"] .job-percent')).to_have_text("80.0%", timeout=TIMEOUT_MS)
