"""Screenshots for the docs, taken from the demo data (see SCREENSHOTS_ENV in conftest: a temporary directory unless asked).

The dashboard and the detail of an actively replicating VM, at desktop
(1280x800) and phone (390x844) widths, in the light theme, plus the desktop
views in the dark theme. The data stays still (no simulator), so what changes
between runs is only what depends on the clock.
"""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from pushsvc.demo.data import load_demo

from ..helpers import make_token
from .conftest import DESKTOP, PHONE, TIMEOUT_MS, sign_in

pytestmark = pytest.mark.browser

# An incremental sync in flight over two disks, with completed jobs and CBT history behind it.
DETAIL_VM = "sql-prod-01"

SHOTS = [
    pytest.param(DESKTOP, "light", 1, "desktop", id="desktop"),
    pytest.param(PHONE, "light", 2, "phone", id="phone"),
    pytest.param(DESKTOP, "dark", 1, "desktop-dark", id="desktop-dark"),
]


@pytest.fixture
async def demo_server(serve, app_config, store):
    await load_demo(store)
    return await serve(app_config)


async def settle(page) -> None:
    """No hover, fonts loaded, and two frames past the last render."""
    await page.mouse.move(0, 0)
    await page.evaluate("document.fonts.ready.then(() => true)")
    await page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


@pytest.mark.parametrize("viewport, scheme, scale, suffix", SHOTS)
async def test_screenshots(new_page, demo_server, screenshots_dir, viewport, scheme, scale, suffix):
    page = await new_page(viewport=viewport, color_scheme=scheme, device_scale_factor=scale)
    await sign_in(page, demo_server, make_token(ttl=8 * 3600))

    rows = page.locator("#vm-list tr[data-vm]")
    await expect(rows).to_have_count(12, timeout=TIMEOUT_MS)
    await expect(page.locator(f'[data-vm="{DETAIL_VM}"] progress.job-progress')).to_have_count(1)
    await settle(page)
    # On a desktop the whole list fits in a little more than one screen: show all of it.
    await page.screenshot(
        path=screenshots_dir / f"dashboard-{suffix}.png",
        animations="disabled",
        caret="hide",
        full_page=viewport == DESKTOP,
    )

    await page.click(f'[data-vm="{DETAIL_VM}"]')
    await expect(page.locator("#detail-title")).to_have_text(DETAIL_VM)
    await expect(page.locator("#detail-body")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(page.locator("#detail-current-job progress.job-progress")).to_have_count(1)
    await expect(page.locator("#detail-disks li[data-disk]")).to_have_count(2)
    await expect(page.locator("#detail-job-history tbody tr")).not_to_have_count(0)
    # The page opens with the heading focused; screenshots show it unfocused.
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    await settle(page)
    await page.screenshot(path=screenshots_dir / f"detail-{suffix}.png", animations="disabled", caret="hide")
