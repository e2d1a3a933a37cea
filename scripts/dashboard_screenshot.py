"""The README's picture of the dashboard (docs/dashboard.png), taken under traffic that changes over time.

It starts the orders service under `lastro serve` (4 workers, SQLite, in a temporary directory), sends it
a mix of reads, lists, writes, misses and slow pings from a number of clients that rises, bursts and falls,
then photographs `/admin/dashboard` in the system's chromium (Playwright, never a downloaded browser).

    python scripts/dashboard_screenshot.py [--seconds 150] [--output docs/dashboard.png]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.servers import serve  # noqa: E402

ORDER = {"customer": "ACME", "items": [{"sku": "A-1", "name": "Anvil", "quantity": 2, "unit_price": 9.5}]}


def clients_at(fraction: float) -> int:
    """How many clients send requests at this point of the run: a ramp, a burst, a calmer end."""
    if fraction < 0.35:
        return 1 + int(fraction / 0.35 * 4)
    if fraction < 0.55:
        return 8
    return 3


def client(url: str, token: str, index: int, active: threading.Event, stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        orders = [http.post("/api/orders", json=ORDER).json()["id"] for _ in range(3)]
        while not stop.is_set():
            if not active.wait(0.2):
                continue
            draw = random.random()
            if draw < 0.58:
                http.get(f"/api/orders/{random.choice(orders)}")
            elif draw < 0.78:
                http.get("/api/orders", params={"limit": 100})
            elif draw < 0.9:
                http.post("/api/orders", json=ORDER)
            elif draw < 0.95:
                http.get(f"/api/orders/{random.randint(10**8, 10**9)}")  # 404
            elif draw < 0.97:
                http.get("/api/orders", headers={"Authorization": "Bearer expired"})  # 401
            elif draw < 0.985:
                http.get("/api/ping", params={"delay": random.choice([0.02, 0.05, 0.1])})
            else:
                http.post("/api/orders", json={**ORDER, "items": ORDER["items"] * 40})  # a large order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--directory", type=Path, help="keep the service's files (logs, database) here")
    options = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("Error: no chromium on PATH (apt-get install chromium)")
    with (
        tempfile.TemporaryDirectory() as scratch,
        serve(options.directory or Path(scratch), WORKERS="4") as server,
    ):
        login = {"username": "admin", "password": "admin"}
        token = httpx.post(f"{server.url}/api/auth/token", data=login, timeout=30).json()["access_token"]
        stop = threading.Event()
        switches = [threading.Event() for _ in range(8)]
        threads = [
            threading.Thread(target=client, args=(server.url, token, n, switch, stop))
            for n, switch in enumerate(switches)
        ]
        for thread in threads:
            thread.start()
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=chromium)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{server.url}/admin/dashboard")
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < options.seconds:
                active = clients_at(elapsed / options.seconds)
                for n, switch in enumerate(switches):
                    (switch.set if n < active else switch.clear)()
                time.sleep(1)
            page.screenshot(path=str(options.output), full_page=True)
            browser.close()
        stop.set()
        for thread in threads:
            thread.join(30)


if __name__ == "__main__":
    main()
