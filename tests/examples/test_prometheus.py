"""A real Prometheus server (Debian's), on the files `lastro deploy prometheus` writes, scrapes the orders
service and reads the same total it was sent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.examples.conftest import Api, orders_service
from tests.support.metrics import fire
from tests.support.prometheus import MISSING, running
from tests.support.servers import wait_for

ROUTE = "/api/orders/{order_id}"

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


@contextmanager
def prometheus(tmp_path: Path, target: str) -> Iterator[str]:
    """Prometheus scraping `target` every second (tests/support/prometheus.py); its URL."""
    directory = tmp_path / "prometheus"
    with running(directory, [target], {**os.environ, "SERVICE_NAME": "orders"}) as server:
        yield server.url


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
