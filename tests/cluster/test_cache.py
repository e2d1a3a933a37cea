"""The order cache across the cluster (ORDER_CACHE_ENABLED, on Redis): once a PATCH through one node has
answered, the other two never serve the old version."""

from __future__ import annotations

import httpx

from tests.cluster.conftest import Users
from tests.support.cluster import PORT, Cluster, record

ORDER = {"customer": "ACME", "items": [{"sku": "A-1", "name": "Anvil", "quantity": 1, "unit_price": 9.5}]}


def test_after_a_patch_no_other_node_serves_the_old_version(cluster: Cluster, users: Users) -> None:
    """Ten PATCHes through node 1; after each, reads through nodes 2 and 3 (cached there) see it."""
    writer, readers = users.new(), [users.new(), users.new()]
    one, *others = (f"http://{node.address}:{PORT}" for node in cluster.network.nodes)
    created = httpx.post(one + "/api/orders", json=ORDER, headers=writer, timeout=10)
    assert created.status_code == 201, created.text
    path = f"/api/orders/{created.json()['id']}"
    etag = created.headers["etag"]
    stale = []
    for round_ in range(10):
        for base, reader in zip(others, readers, strict=True):  # each node caches the current version
            assert httpx.get(base + path, headers=reader, timeout=10).headers["etag"] == etag
        patched = httpx.patch(
            one + path, json={"notes": f"round {round_}"}, headers=writer | {"If-Match": etag}, timeout=10
        )
        assert patched.status_code == 200, patched.text
        etag = patched.headers["etag"]
        for base, reader in zip(others, readers, strict=True):
            for _ in range(3):
                seen = httpx.get(base + path, headers=reader, timeout=10).headers["etag"]
                if seen != etag:
                    stale.append((round_, base, seen, etag))
    assert stale == []
    record("cache", patches=10, reads_after_each=6, stale=len(stale))
    for base in others:  # the reads went through the cache, in Redis
        health = httpx.get(base + "/health", timeout=10).json()
        assert health["checks"]["order_cache"]["backend"] == "redis"
