"""The GUI under its Content-Security-Policy in Chromium: nothing it needs is blocked."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from ..helpers import make_token
from .conftest import sign_in

pytestmark = pytest.mark.browser

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(event.violatedDirective + ' ' + event.blockedURI);
});
"""


async def test_dashboard_and_detail_run_under_the_policy(page, server):
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    await page.add_init_script(RECORD_VIOLATIONS)
    response = await page.goto(server.url + "/")
    assert response is not None and "default-src 'self'" in response.headers["content-security-policy"]
    await sign_in(page, server, make_token())  # the socket is live: connect-src allows it
    await expect(page.locator('[data-vm="pgtest1"] progress.job-progress')).to_have_count(1)
    await page.click('[data-vm="pgtest1"]')
    await expect(page.locator("#detail-title")).to_have_text("pgtest1")
    await expect(page.locator("#detail-disks li[data-disk]")).to_have_count(1)
    assert await page.evaluate("window.__cspViolations") == []
    assert not [text for text in messages if "Content Security Policy" in text]
