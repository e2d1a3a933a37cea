"""Periodic jobs across the cluster: one run per period among six workers on three nodes, and another
node takes over when the leader's node dies."""

from __future__ import annotations

import httpx

from tests.cluster.conftest import Users
from tests.support.cluster import Cluster

JOB = "orders-cleanup"


def _runs(cluster: Cluster, users: Users) -> list[dict[str, object]]:
    response = httpx.get(
        cluster.url + "/api/admin/jobs", params={"limit": 500}, headers=users.admin, timeout=10
    )
    response.raise_for_status()
    return [run for run in response.json()["items"] if run["job"] == JOB]
