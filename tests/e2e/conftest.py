"""Browser fixtures: the app served over real HTTP, and Debian's chromium through Playwright.

The app's runtime (database pool, Redis) is bound to the session event loop and
already started by ``app_and_runtime``, so uvicorn serves the same app object as a
task in that loop with lifespan off (the runtime must not start twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, Response, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
STARTUP_TIMEOUT_SECONDS = 10
SHUTDOWN_TIMEOUT_SECONDS = 10


class _InLoopServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to pytest (Ctrl-C still stops the run)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listening_socket() -> socket.socket:
    """A socket bound to a free local port; handing it to uvicorn avoids a port race."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@pytest.fixture(scope="session")
async def live_url(app: object) -> AsyncIterator[str]:
    """The base URL of the app served by uvicorn on a free port of 127.0.0.1."""
    sock = _listening_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        log_config=None,  # keep pytest's logging set-up; uvicorn's records still reach it
    )
    server = _InLoopServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
            while not server.started:
                if task.done():
                    task.result()  # raises the start-up error
                    pytest.fail("uvicorn stopped before it started serving")
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        if not task.done():
            server.should_exit = True
            await asyncio.wait_for(task, SHUTDOWN_TIMEOUT_SECONDS)
        sock.close()


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium: Playwright cannot download its own browsers here."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """One headless chromium for the session; each test gets its own context."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


async def _new_context(browser: Browser, live_url: str) -> BrowserContext:
    context = await browser.new_context(
        base_url=live_url, viewport={"width": 1280, "height": 800}, locale="en-US"
    )
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
async def browser_context(browser: Browser, live_url: str) -> AsyncIterator[BrowserContext]:
    """A fresh cookie jar per test, resolving relative URLs against ``live_url``."""
    context = await _new_context(browser, live_url)
    yield context
    await context.close()


@pytest.fixture
async def second_browser_context(browser: Browser, live_url: str) -> AsyncIterator[BrowserContext]:
    """Another person's browser: a second context sharing no cookies with ``browser_context``."""
    context = await _new_context(browser, live_url)
    yield context
    await context.close()


@pytest.fixture
def page_problems() -> list[str]:
    """What went wrong under the hood: uncaught JavaScript errors and HTTP 5xx answers."""
    return []


async def _watched_page(context: BrowserContext, problems: list[str]) -> Page:
    """A new page of ``context`` that records its problems in ``problems``."""
    page = await context.new_page()
    page.on("pageerror", lambda error: problems.append(f"JavaScript error: {error}"))

    def record_server_error(response: Response) -> None:
        if response.status >= 500:
            problems.append(f"HTTP {response.status} from {response.request.method} {response.url}")

    page.on("response", record_server_error)
    return page


@pytest.fixture
async def page(browser_context: BrowserContext, page_problems: list[str]) -> AsyncIterator[Page]:
    """A page of the test's context; it records its problems in ``page_problems``."""
    page = await _watched_page(browser_context, page_problems)
    yield page
    await page.close()


@pytest.fixture
async def second_page(
    second_browser_context: BrowserContext, page_problems: list[str]
) -> AsyncIterator[Page]:
    """A page of the second context; its problems land in the same ``page_problems``."""
    page = await _watched_page(second_browser_context, page_problems)
    yield page
    await page.close()
