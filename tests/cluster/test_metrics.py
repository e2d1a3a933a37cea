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


def _total(prometheus: ServerProcess) -> tuple[float, int]:
    """The sum over the nodes, and how many nodes it was summed over (the targets up)."""
    answer = httpx.get(prometheus.url + "/api/v1/query", params={"query": QUERY}, timeout=10).json()
    up = httpx.get(prometheus.url + "/api/v1/query", params={"query": "sum(up)"}, timeout=10).json()
    value = answer["data"]["result"][0]["value"][1] if answer["data"]["result"] else "0"
    targets = up["data"]["result"][0]["value"][1] if up["data"]["result"] else "0"
    return float(value), int(float(targets))


def _settled(prometheus: ServerProcess, seconds: float = 20) -> float:
    """The total once three targets are up and two scrapes in a row agree."""
    deadline, last = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        total, up = _total(prometheus)
        if up == 3 and total == last:
            return total
        last = total if up == 3 else None
        time.sleep(1.5)
    raise AssertionError("the scrapes did not settle")


async def test_the_nodes_requests_add_up_in_prometheus(
    cluster: Cluster, users: Users, prometheus: ServerProcess
) -> None:
    """300 GETs through nginx, answered by all three nodes: Prometheus' sum grows by exactly 300."""
    before = _settled(prometheus)
    headers = [users.new() for _ in range(3)]  # 100 each, within each user's limit
    async with httpx.AsyncClient(base_url=cluster.url, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.get(f"/api/orders/{n + 1}", headers=headers[n % 3]) for n in range(300))
        )
    assert {response.status_code for response in responses} <= {200, 404}
    assert _settled(prometheus) - before == 300
    record("metrics", sent=300, prometheus_sum_grew_by=300)
