"""A rolling restart across the cluster: SIGHUP node by node while clients read and write through nginx.
nginx retries what is idempotent; lastro's drain (a connection idle at shutdown is kept open, and a
request on it answered with `Connection: close`) does the rest, so no request fails.

`make test` restarts two of the three nodes, one after the other (each node's restart is the same, and
the other nodes serve meanwhile); `LASTRO_CLUSTER_SOAK=1` (`make cluster-soak`) restarts all three."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter

import httpx
import pytest

from tests.support.cluster import Cluster, NodeProcess, record
from tests.support.event_clients import ORDER

pytestmark = pytest.mark.anyio

WRITERS, READERS = 20, 10
ROLLED = 3 if os.environ.get("LASTRO_CLUSTER_SOAK") else 2  # nodes restarted, one after the other


def _replaced(node: NodeProcess, before: set[int], seconds: float = 60) -> None:
    """Wait until none of the node's workers `before` serves and two new ones do."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = node.worker_pids()
        if not now & before and len(now) == 2:
            return
        time.sleep(0.2)
    raise AssertionError(f"node {node.index}: workers {before} were not replaced")


def _roll(cluster: Cluster) -> None:
    time.sleep(1)
    for node in cluster.nodes[:ROLLED]:
        before = node.worker_pids()
        node.signal(signal.SIGHUP)
        _replaced(node, before)
    time.sleep(1)


async def test_sighup_node_by_node_fails_no_request(unlimited: Cluster) -> None:
    """Reads and idempotent-keyed writes through the whole rolling restart: every one answered 2xx."""
    cluster = unlimited
    headers = {"Authorization": f"Bearer {cluster.token()}"}
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=WRITERS + READERS)
    async with httpx.AsyncClient(base_url=cluster.url, headers=headers, timeout=60, limits=limits) as client:
        first = await client.post("/api/orders", json=ORDER)
        path = f"/api/orders/{first.json()['id']}"

        async def write() -> None:
            while not stop.is_set():
                key = {"Idempotency-Key": uuid.uuid4().hex}
                try:
                    statuses[(await client.post("/api/orders", json=ORDER, headers=key)).status_code] += 1
                except httpx.TransportError as error:
                    errors.append(repr(error))

        async def read() -> None:
            while not stop.is_set():
                try:
                    statuses[(await client.get(path)).status_code] += 1
                except httpx.TransportError as error:
                    errors.append(repr(error))

        clients = [asyncio.create_task(write()) for _ in range(WRITERS)]
        clients += [asyncio.create_task(read()) for _ in range(READERS)]
        await asyncio.to_thread(_roll, cluster)
        stop.set()
        await asyncio.gather(*clients)
    assert errors == []
    assert set(statuses) <= {200, 201}, statuses
    assert statuses[201] > 100, statuses
    record("rolling", statuses=dict(statuses), transport_errors=len(errors))
