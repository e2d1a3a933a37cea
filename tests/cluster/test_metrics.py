"""Metrics across the cluster: a real Prometheus scrapes the three nodes with the configuration
`lastro deploy prometheus` writes, and the sum of `http_requests_total` over the nodes is what was sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.conftest import Users
from tests.support.cluster import PORT, Cluster, record
from tests.support.process import ServerProcess
from tests.support.prometheus import MISSING, running

pytestmark = pytest.mark.anyio

ROUTE = "/api/orders/{order_id}"
QUERY = f'sum(http_requests_total{{route="{ROUTE}",method="GET"}})'


@pytest.fixture
def prometheus(cluster: Cluster, tmp_path: Path) -> Iterator[ServerProcess]:
    if MISSING is not None:
        pytest.skip(MISSING)
    targets = [f"{node.address}:{PORT}" for node in cluster.network.nodes]
    with running(tmp_path / "prometheus", targets, cluster.env_for(None)) as server:
        yield server


def _query(prometheus: ServerProcess, query: str) -> float | None:
    answer = httpx.get(prometheus.url + "/api/v1/query", params={"query": query}, timeout=10).json()
    return float(answer["data"]["result"][0]["value"][1]) if answer["data"]["result"] else None


def _total(prometheus: ServerProcess) -> tuple[float, int, float]:
    """The sum over the nodes, how many nodes it was summed over (the targets up), and when the target
    scraped longest ago was last scraped (Unix time)."""
    total = _query(prometheus, QUERY) or 0.0
    up = _query(prometheus, "sum(up)") or 0.0
    oldest = _query(prometheus, "min(timestamp(up))") or 0.0
    return total, int(up), oldest


def _settled(prometheus: ServerProcess, seconds: float = 20) -> float:
    """The total once three targets are up and a scrape of every target since it was first read left it
    unchanged."""
    deadline, seen, since = time.monotonic() + seconds, None, 0.0
    while time.monotonic() < deadline:
        asked = time.time()
        total, up, oldest = _total(prometheus)
        if up == 3 and total == seen and oldest > since:
            return total
        if up != 3:
            seen = None
        elif total != seen:
            seen, since = total, asked
        # Polled faster than the 1 s scrapes: the timestamps, not the pace, tell a fresh scrape.
        time.sleep(0.2)
    raise AssertionError("the scrapes did not settle")


async def test_the_nodes_requests_add_up_in_prometheus(
    cluster: Cluster, users: Users, prometheus: ServerProcess
) -> None:
    """300 GETs through nginx, answered by all three nodes: Prometheus' sum grows by exactly 300."""
    headers = [users.new() for _ in range(3)]  # 100 each, within each user's limit; while Prometheus warms up
    before = _settled(prometheus)
    async with httpx.AsyncClient(base_url=cluster.url, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.get(f"/api/orders/{n + 1}", headers=headers[n % 3]) for n in range(300))
        )
    assert {response.status_code for response in responses} <= {200, 404}
    assert _settled(prometheus) - before == 300
    record("metrics", sent=300, prometheus_sum_grew_by=300)
