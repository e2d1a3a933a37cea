"""Metrics across the cluster: a real Prometheus scrapes the three nodes with the configuration
`lastro deploy prometheus` writes, and the sum of `http_requests_total` over the nodes is what was sent."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.conftest import Users
from tests.support.cluster import PORT, Cluster, record
from tests.support.process import ServerProcess, free_port
from tests.support.servers import LASTRO, ROOT

pytestmark = pytest.mark.anyio

ROUTE = "/api/orders/{order_id}"
QUERY = f'sum(http_requests_total{{route="{ROUTE}",method="GET"}})'


@pytest.fixture
def prometheus(cluster: Cluster, tmp_path: Path) -> Iterator[ServerProcess]:
    if subprocess.run(["which", "prometheus"], capture_output=True, check=False).returncode != 0:
        pytest.skip("prometheus is not installed: apt-get install -y prometheus (.ci/run does)")
    targets = [arg for node in cluster.network.nodes for arg in ("--target", f"{node.address}:{PORT}")]
    subprocess.run(
        [LASTRO, "deploy", "prometheus", *targets, "--output", str(tmp_path)],
        env=cluster.env_for(None),
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(config.read_text().replace("scrape_interval: 15s", "scrape_interval: 1s"))
    port = free_port()
    argv = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with ServerProcess(argv, {}, tmp_path / "prometheus.log", port=port, ready_path="/-/ready") as server:
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
