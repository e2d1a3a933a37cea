"""A real Prometheus server (Debian's), on the files `lastro deploy prometheus` writes, scrapes the orders
service and reads the same total it was sent."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.examples.conftest import Api, orders_service
from tests.support.metrics import fire
from tests.support.servers import LASTRO, free_port, wait_for

ROUTE = "/api/orders/{order_id}"

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="Debian's prometheus is not installed: apt-get install -y prometheus",
)


@contextmanager
def prometheus(tmp_path: Path, target: str) -> Iterator[str]:
    """Prometheus on a loopback port with the generated files, scraping `target` every second; its URL."""
    directory = tmp_path / "prometheus"
    command = [LASTRO, "deploy", "prometheus", "--output", str(directory), "--target", target]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "SERVICE_NAME": "orders"})
    config = directory / "prometheus.yml"
    # The one change: a scrape a second rather than every 15 s, so that the test need not wait.
    config.write_text(config.read_text().replace("scrape_interval: 15s", "scrape_interval: 1s"))
    port = free_port()
    command = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with (tmp_path / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def query(base_url: str, expression: str) -> list[dict[str, Any]]:
    try:
        response = httpx.get(f"{base_url}/api/v1/query", params={"query": expression}, timeout=5)
    except httpx.TransportError:
        return []  # not listening yet
    if response.status_code != 200:
        return []
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def test_prometheus_reads_the_total_that_was_sent(tmp_path: Path) -> None:
    """600 GETs over 2 workers: Prometheus's sum of http_requests_total for the route is 600."""
    with (
        orders_service("sqlite", tmp_path, WORKERS="2") as server,
        Api.login(server.url, "admin", "admin") as api,
    ):
        path = f"/api/orders/{api.create().json()['id']}"
        assert fire(server.url, str(api.token), [path] * 600) == [200] * 600
        with prometheus(tmp_path, server.url.removeprefix("http://")) as base_url:
            expression = f'sum(http_requests_total{{route="{ROUTE}",method="GET",status="200"}})'

            def total() -> float | None:
                result = query(base_url, expression)
                return float(result[0]["value"][1]) if result else None

            assert wait_for(total, timeout=60) == 600
            up = query(base_url, 'up{job="orders"}')
            assert [sample["value"][1] for sample in up] == ["1"]
            rules = httpx.get(f"{base_url}/api/v1/rules", timeout=5).json()["data"]["groups"]
            assert sum(len(group["rules"]) for group in rules) >= 6  # the generated alerts, loaded
