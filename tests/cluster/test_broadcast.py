"""Order events across the cluster: WebSocket clients on every node receive every event of their tenant,
in order per order, and none of another tenant's, whichever node made the change."""

from __future__ import annotations

import asyncio
import itertools
import os

import httpx
import pytest

from tests.cluster.conftest import Users
from tests.support.cluster import PORT, Cluster, record
from tests.support.event_clients import ORDER, Listener

pytestmark = pytest.mark.anyio

CLIENTS = 30
ORDERS = 300 if os.environ.get("LASTRO_CLUSTER_SOAK") else 150  # make cluster-soak: 300
PATCHED = 30  # per tenant: a second event of the same order, which must come after its first
WRITERS = 5  # per tenant, so that each user's writes stay within the cluster's limit


async def test_thirty_clients_on_three_nodes_see_every_event_of_their_tenant(
    cluster: Cluster, users: Users
) -> None:
    """ORDERS orders created (and 60 updated) through all nodes: each client gets its tenant's events."""
    nodes = [f"http://{node.address}:{PORT}" for node in cluster.network.nodes]
    tenants = [users.tenant("cluster-broadcast-a"), users.tenant("cluster-broadcast-b")]
    writers = {tenant: [users.new(tenant) for _ in range(WRITERS)] for tenant in tenants}
    listeners = [
        Listener(nodes[n % 3], writers[tenants[n % 2]][0]["Authorization"].split()[1], tenants[n % 2])
        for n in range(CLIENTS)
    ]
    expected = ORDERS // 2 + PATCHED
    receiving = [asyncio.create_task(listener.run(expected=expected)) for listener in listeners]
    written: dict[int, list[int]] = {tenant: [] for tenant in tenants}
    async with asyncio.timeout(120):
        await asyncio.gather(*(listener.subscribed.wait() for listener in listeners))
        async with httpx.AsyncClient(timeout=30) as client:
            targets = itertools.cycle(nodes)
            gate = asyncio.Semaphore(12)

            async def create(tenant: int, n: int) -> None:
                async with gate:
                    headers = writers[tenant][n % WRITERS]
                    response = await client.post(next(targets) + "/api/orders", json=ORDER, headers=headers)
                    assert response.status_code == 201, response.text
                    written[tenant].append(response.json()["id"])

            await asyncio.gather(*(create(tenants[n % 2], n) for n in range(ORDERS)))

            async def patch(tenant: int, order_id: int, n: int) -> None:
                async with gate:
                    headers = writers[tenant][n % WRITERS] | {"If-Match": "*"}
                    url = f"{next(targets)}/api/orders/{order_id}"
                    response = await client.patch(url, json={"notes": "packed"}, headers=headers)
                    assert response.status_code == 200, response.text

            await asyncio.gather(
                *(patch(t, order_id, n) for t in tenants for n, order_id in enumerate(written[t][:PATCHED]))
            )
        await asyncio.gather(*receiving)
    for listener in listeners:
        mine = set(written[listener.tenant])
        seen = [(event["order_id"], event["version"]) for event in listener.events]
        assert len(seen) == expected
        assert {order_id for order_id, _ in seen} == mine  # every order of its tenant, none of another
        ids = [event["id"] for event in listener.events]
        assert ids == sorted(set(ids))  # no event twice, in the order of publication
        for order_id in written[listener.tenant][:PATCHED]:
            assert [version for seen_id, version in seen if seen_id == order_id] == [1, 2]
    record("broadcast", clients=CLIENTS, orders=ORDERS, events_per_client=expected, tenants=2)
