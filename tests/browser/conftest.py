"""Browser fixtures: Debian's Chromium driven by playwright, the real app on a real socket.

Every test gets its own Chromium (launched in the test's event loop), its own
MariaDB database (the ``store``/``seeded`` fixtures of tests/conftest.py) and
the app served by ``aiohttp.web.AppRunner`` on 127.0.0.1. The server can be
stopped and started again on the same port, which is how the reconnect test
simulates a restart. Uncaught JavaScript errors fail the test that caused them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, WebSocket, async_playwright, expect

from pushsvc.app import create_app
from pushsvc.config import Config

from ..contracts.checker import ContractChecker
from ..helpers import make_config

CHROMIUM = os.environ.get("PUSHSVC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# The poller's interval in these tests: short, so a write reaches the page quickly.
POLL_INTERVAL = 0.2
# How long to wait for the GUI to reach a state it reaches by itself.
TIMEOUT_MS = 10_000

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# Where test_screenshots writes its pictures: a temporary directory, unless
# PUSHSVC_SCREENSHOTS_DIR names one. Refreshing the README's pictures is the
# explicit command `PUSHSVC_SCREENSHOTS_DIR=docs/screenshots python -m pytest
# tests/browser/test_screenshots.py`; a plain test run never touches docs/.
SCREENSHOTS_ENV = "PUSHSVC_SCREENSHOTS_DIR"

log = logging.getLogger(__name__)


@pytest.fixture
def screenshots_dir(tmp_path) -> pathlib.Path:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    directory = pathlib.Path(chosen) if chosen else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def browser_config(database_url: str, **sections) -> Config:
    """A test config whose poller ticks every POLL_INTERVAL (sections override it)."""
    sections.setdefault("poller", {"interval": POLL_INTERVAL})
    return make_config(database_url, **sections)


class LiveServer:
    """The app on a real socket; ``stop`` and ``start`` again keep the port (a restart)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.port = 0
        self.app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._poller: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> LiveServer:
        assert self._runner is None, "already running"
        # A fresh app each time, as a restarted process would be (new hub epoch, new pool).
        self.app = create_app(self.config)
        runner = web.AppRunner(self.app, shutdown_timeout=2.0)
        before = asyncio.all_tasks()
        await runner.setup()
        self._poller = next((task for task in asyncio.all_tasks() - before if task.get_name() == "poller"), None)
        try:
            site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Shut down as the service does: sockets get 1001, then the poller and the store stop."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        cleanup = asyncio.ensure_future(runner.cleanup())
        while not (await asyncio.wait({cleanup}, timeout=3.0))[0]:
            # Python 3.11's asyncio.wait_for can swallow a cancellation when the awaited
            # thing completes in the same loop iteration (CPython gh-86296). The poller
            # then keeps ticking and the shutdown waits for it forever: cancel it again.
            if self._poller is not None and not self._poller.done():
                log.warning("the poller ignored its cancellation; cancelling it again")
                self._poller.cancel()
        await cleanup


@pytest.fixture
async def serve(database_url, browser) -> AsyncIterator[Callable[[Config], Awaitable[LiveServer]]]:
    """``await serve(config)``: a started LiveServer, stopped after the test.

    It depends on the browser and the database so that it is torn down first:
    the service stops before its database is dropped.
    """
    servers: list[LiveServer] = []

    async def start(config: Config) -> LiveServer:
        server = LiveServer(config)
        servers.append(server)
        return await server.start()

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
def app_config(database_url) -> Config:
    return browser_config(database_url)


@pytest.fixture
async def server(serve, app_config, seeded) -> LiveServer:
    """The app over the seed (pgtest1 replicating at 49.3 %, pgtest2 discovered)."""
    return await serve(app_config)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need Debian's chromium package "
            "(apt-get install chromium; .ci/run installs it). Set PUSHSVC_CHROMIUM to use another binary.",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def new_page(browser, contracts) -> AsyncIterator[Callable[..., Awaitable[Page]]]:
    """``await new_page(viewport=..., color_scheme=...)``: a page in a context of its own.

    Every WebSocket frame the GUI sends or receives is validated against the
    AsyncAPI document (tests/contracts/checker.py); a violation fails the test.
    """
    contexts = []
    errors: list[str] = []

    async def make(*, viewport: dict = DESKTOP, color_scheme: str = "light", device_scale_factor: float = 1) -> Page:
        context = await browser.new_context(
            viewport=viewport,
            color_scheme=color_scheme,
            device_scale_factor=device_scale_factor,
            locale="en-GB",
            timezone_id="Europe/London",
        )
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("websocket", lambda socket: check_frames(socket, contracts))
        return page

    yield make
    for context in contexts:
        await context.close()
    assert not errors, f"uncaught JavaScript errors: {errors}"


def check_frames(socket: WebSocket, contracts: ContractChecker) -> None:
    socket.on("framesent", lambda payload: contracts.frame_seen(payload, from_server=False))
    socket.on("framereceived", lambda payload: contracts.frame_seen(payload, from_server=True))


@pytest.fixture
async def page(new_page) -> Page:
    return await new_page()


async def sign_in(page: Page, server: LiveServer, token: str, *, path: str = "/") -> None:
    """Open the GUI, paste ``token`` into the sign-in form and wait until the socket is live."""
    await page.goto(server.url + path)
    await expect(page.locator("#signin")).to_be_visible()
    await page.fill("#token-input", token)
    await page.click("#signin-submit")
    await expect_state(page, "live")


async def expect_state(page: Page, state: str, timeout: float = TIMEOUT_MS) -> None:
    """``#connection-status`` reaches ``state`` (and the text that goes with it)."""
    text = {
        "live": "Live",
        "reconnecting": "Reconnecting\u2026",
        "offline": "Offline",
        "db-unavailable": "Database unavailable",
    }[state]
    status = page.locator("#connection-status")
    await expect(status).to_have_attribute("data-state", state, timeout=timeout)
    await expect(status).to_have_text(text, timeout=timeout)


async def execute(store, sql: str, args=()) -> int:
    """One statement in its own transaction, as the appliance writes."""
    async with store.transaction() as writer:
        return await writer.execute(sql, args)
