"""The cluster the tests of this directory share: three nodes in network namespaces, behind nginx, on one
PostgreSQL and one Redis (tests/support/cluster.py). Where namespaces cannot be made (not root, no `ip`,
`nft` or `socat`), every test here skips and says why; CI runs as root, so it runs there.

The shared cluster counts `RATE_LIMIT_DEFAULT=120/minute` per user across the nodes, so each test makes the
users it sends requests as, and stays within its own budgets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import Cluster, available

LIMIT_PER_MINUTE = 120


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = available()
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.skip(reason=f"the cluster suite needs network namespaces: {reason}"))


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("cluster")
    settings = {
        "RATE_LIMIT_DEFAULT": f"{LIMIT_PER_MINUTE}/minute",
        "CLEANUP_INTERVAL_SECONDS": "1",
        "ORDER_CACHE_ENABLED": "true",
        # A loaded 2-core machine can hold a Redis answer past the 0.5 s default, and a limit then falls
        # back to each worker's own count: the limit test would measure the machine, not the cluster.
        "REDIS_SOCKET_TIMEOUT": "3",
    }
    with Cluster(directory, settings) as running:
        yield running


@pytest.fixture(scope="package")
def unlimited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A second cluster, without the limit, for the tests that load it (faults, a rolling restart)."""
    with Cluster(tmp_path_factory.mktemp("unlimited")) as running:
        yield running


class Users:
    """Users of the tests' own, each with a token (a limit budget of its own)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.admin = {"Authorization": f"Bearer {cluster.token()}"}
        self.count = 0

    def tenant(self, name: str) -> int:
        response = httpx.post(
            self.cluster.url + "/api/admin/tenants", json={"name": name}, headers=self.admin, timeout=10
        )
        response.raise_for_status()
        tenant_id: int = response.json()["id"]
        return tenant_id

    def new(self, tenant_id: int = 1) -> dict[str, str]:
        """Headers that authenticate as a new user of `tenant_id`."""
        self.count += 1
        username = f"user-{self.count}-{tenant_id}"
        body = {"username": username, "password": "password-1234", "tenant_id": tenant_id, "is_admin": False}
        httpx.post(
            self.cluster.url + "/api/admin/users", json=body, headers=self.admin, timeout=10
        ).raise_for_status()
        response = httpx.post(
            self.cluster.url + "/api/auth/token",
            data={"username": username, "password": "password-1234"},
            timeout=10,
        )
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="package")
def users(cluster: Cluster) -> Users:
    return Users(cluster)
