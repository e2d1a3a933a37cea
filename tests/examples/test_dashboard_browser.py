"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright, on the orders service
under `lastro serve` while a client sends it traffic.

Never a browser Playwright downloads: the system's `chromium` (`apt-get install chromium`; `.ci/run` installs
it). Each test saves a screenshot under its tmp_path.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.examples.conftest import JSON_ORDER, Api, orders_service
from tests.support.servers import ServeProcess

playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")

TOKEN = "br0wser-T0ken-for-the-dashboard"
VIEWPORT = {"width": 1280, "height": 800}
SETTLE_MS = 15_000
# Two reads at least (a chart has a line) and a slow request listed.
CHARTED = """() =>
    Number(document.getElementById("chart-rps").dataset.points) >= 2
    && document.querySelectorAll("#slowest tbody td.id").length > 0"""
SHOWN = "() => document.getElementById('rps').dataset.value !== undefined"


@contextmanager
def traffic(server: ServeProcess, clients: int = 2) -> Iterator[None]:
    """Clients reading, listing, creating and missing orders, and a few slow pings, until the block ends."""
    stop = threading.Event()

    def run() -> None:
        with Api.login(server.url, "admin", "admin") as api:
            order = api.create().json()["id"]
            for n in range(1_000_000):
                if stop.is_set():
                    return
                if n % 10 == 9:
                    api.get("/api/ping", params={"delay": 0.05})
                elif n % 10 == 8:
                    api.get("/api/orders/999999999")  # 404
                elif n % 10 == 7:
                    api.post("/api/orders", json=JSON_ORDER)
                else:
                    api.get(f"/api/orders/{order}")

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@contextmanager
def page_of(browser: Any, url: str) -> Iterator[tuple[Any, list[str]]]:
    """A fresh tab on `url` and the errors it reports (a script error, a policy violation)."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(url)
    try:
        yield page, errors
    finally:
        context.close()


def value(page: Any, element: str) -> float:
    """The number an element of the page shows (its data-value)."""
    return float(page.get_attribute(f"#{element}", "data-value") or "nan")


def test_the_dashboard_shows_live_traffic(browser: Any, tmp_path: Path) -> None:
    """Under traffic, the cards show requests, latencies and both workers, the charts draw, the tables fill,
    and the page runs under its policy without an error."""
    with (
        orders_service("sqlite", tmp_path, MONITOR_INTERVAL="0.5") as server,
        traffic(server),
        page_of(browser, f"{server.url}/admin/dashboard") as (page, errors),
    ):
        page.wait_for_function(CHARTED, timeout=SETTLE_MS)
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        assert value(page, "rps") > 0
        assert value(page, "total-requests") > 0
        assert 0 < value(page, "p50") <= value(page, "p95") <= value(page, "p99")
        assert value(page, "client-error-rate") > 0  # the 404s
        assert value(page, "error-rate") == 0
        assert value(page, "worker-count") == 2
        assert value(page, "rss-total") > 0
        assert value(page, "pool-size") > 0
        assert page.locator("#workers tbody tr[data-pid]").count() == 2
        assert "resource-monitor" in page.inner_text("#jobs")
        assert "/api/ping" in page.inner_text("#slowest")
        assert page.is_hidden("#login")
        assert errors == []


def test_the_page_asks_for_the_token_and_keeps_it(browser: Any, tmp_path: Path) -> None:
    """From outside METRICS_NETWORKS the page asks for METRICS_TOKEN, then shows the figures, and the tab
    remembers the token across a reload."""
    settings = {"METRICS_TOKEN": TOKEN, "METRICS_NETWORKS": "192.0.2.0/24"}  # loopback is outside
    with (
        orders_service("sqlite", tmp_path, **settings) as server,
        page_of(browser, f"{server.url}/admin/dashboard") as (page, errors),
    ):
        page.wait_for_selector("#login", state="visible", timeout=SETTLE_MS)
        assert page.is_hidden("#board")
        page.fill("#token", TOKEN)
        page.click("#login button")
        page.wait_for_function(SHOWN, timeout=SETTLE_MS)
        assert page.is_hidden("#login")
        page.reload()
        page.wait_for_function(SHOWN, timeout=SETTLE_MS)
        assert page.is_hidden("#login")
        page.screenshot(path=str(tmp_path / "dashboard-token.png"))
        assert [error for error in errors if "401" not in error] == []  # the first read is refused
