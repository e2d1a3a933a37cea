"""Periodic jobs across the cluster: one run per period among six workers on three nodes, and another
node takes over when the leader's node dies."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime

import httpx

from tests.cluster.conftest import Users
from tests.support.cluster import Cluster, record

JOB = "orders-cleanup"


def _runs(cluster: Cluster, users: Users) -> list[dict[str, object]]:
    response = httpx.get(
        cluster.url + "/api/admin/jobs", params={"limit": 500}, headers=users.admin, timeout=10
    )
    response.raise_for_status()
    return [run for run in response.json()["items"] if run["job"] == JOB]


def _started(run: dict[str, object]) -> float:
    return datetime.fromisoformat(str(run["started_at"])).timestamp()


def _wait(condition: Callable[[], object], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s")


def test_a_one_second_job_runs_once_a_second_across_the_cluster(cluster: Cluster, users: Users) -> None:
    """Over 15 s: 14-16 runs among the six workers of three nodes, never two in one period."""
    # The job has run since the cluster started: the window is the last 15 s (waited for, if the cluster
    # is younger), not 15 s more of the suite's time.
    _wait(lambda: _runs(cluster, users), 15)
    first = min(_started(run) for run in _runs(cluster, users))
    time.sleep(max(0.0, first + 17 - time.time()))
    end = time.time() - 1  # the run of the current second may not be recorded yet
    start = end - 15
    runs = sorted((run for run in _runs(cluster, users) if start <= _started(run) < end), key=_started)
    assert 14 <= len(runs) <= 16, [run["started_at"] for run in runs]
    gaps = [_started(later) - _started(earlier) for earlier, later in itertools.pairwise(runs)]
    assert min(gaps) > 0.5, gaps
    assert all(run["outcome"] == "ok" for run in runs[:-1])
    hosts = Counter(str(run["host"]) for run in runs)
    record("jobs", seconds=15, runs=len(runs), min_gap=round(min(gaps), 3), by_host=dict(hosts))


def test_another_node_takes_over_when_the_leaders_dies(cluster: Cluster, users: Users) -> None:
    """Every process of the leader's node killed: a run starts on another node within two periods."""
    leader_host = str(_runs(cluster, users)[0]["host"])
    leader = next(node for node in cluster.nodes if leader_host == f"lastro-node-{node.index}")
    killed_at = time.time()
    leader.kill()
    try:
        _wait(lambda: _runs(cluster, users)[0]["host"] != leader_host, 10)
        taken_over = [run for run in _runs(cluster, users) if run["host"] != leader_host]
        first = min(_started(run) for run in taken_over if _started(run) > killed_at)
        assert first - killed_at <= 2.0 + 0.5  # two periods, and the scheduler's own slack
        record("jobs takeover", period=1.0, seconds_after_kill=round(first - killed_at, 2))
    finally:
        cluster.restart(leader.index)
