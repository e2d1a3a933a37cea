"""The orders service's dashboard under `lastro serve`: whichever worker answers, it shows every worker's
requests, its totals agree with /metrics, and a worker that is gone leaves it. The service keeps its
metrics in a directory of the test's (an operator's PROMETHEUS_MULTIPROC_DIR), to look into."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from lastro.observability.metrics import OBSERVER_ROUTES
from tests.examples.conftest import Api, orders_service
from tests.support.metrics import fire, scrape, series_of
from tests.support.servers import ServeProcess, wait_for

WORKERS = 3


def read(server: ServeProcess) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/admin/dashboard.json", timeout=10)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def pids_of_slowest(server: ServeProcess) -> set[int]:
    return {request["pid"] for request in read(server)["slowest"]}


@contextmanager
def loaded(tmp_path: Path) -> Iterator[ServeProcess]:
    """3 workers of the orders service that have answered 600 reads of one order between them."""
    settings = {
        "WORKERS": str(WORKERS),
        "MONITOR_INTERVAL": "0.2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    with (
        orders_service("sqlite", tmp_path, **settings) as server,
        Api.login(server.url, "admin", "admin") as api,
    ):
        wait_for(lambda: len(server.worker_pids()) == WORKERS)
        path = f"/api/orders/{api.create().json()['id']}"
        assert fire(server.url, str(api.token), [path] * 600) == [200] * 600
        wait_for(lambda: len(pids_of_slowest(server)) > 1, timeout=20)
        yield server


def test_the_dashboard_adds_up_every_worker(tmp_path: Path) -> None:
    """Whichever worker answers: the slowest of all workers, the totals /metrics counts, every worker."""
    with loaded(tmp_path) as server:
        document = read(server)
        application = sum(
            value
            for labels, value in series_of(scrape(server.url), "http_requests_total").items()
            if dict(labels)["route"] not in OBSERVER_ROUTES
        )
    assert document["totals"]["requests"] == application >= 602  # the login, the order, the 600 reads
    assert document["totals"]["status_counts"]["2xx"] >= 602
    assert document["worker_totals"]["workers"] == WORKERS
    assert len(document["workers"]) == WORKERS
    assert document["worker_totals"]["requests"] == sum(w["requests"] for w in document["workers"])
    assert document["pool"]["size"] > 0
    durations = [request["duration_ms"] for request in document["slowest"]]
    assert len(durations) == 10
    assert durations == sorted(durations, reverse=True)


@pytest.mark.posix
def test_a_killed_workers_slowest_requests_leave_the_dashboard(tmp_path: Path) -> None:
    """A worker killed outright: its requests leave the slowest list, its file leaves the directory."""
    with loaded(tmp_path) as server:
        gone = max(pids_of_slowest(server))
        before = server.worker_pids()
        os.kill(gone, signal.SIGKILL)
        wait_for(lambda: len(server.worker_pids() - before) == 1, timeout=30)
        wait_for(lambda: gone not in pids_of_slowest(server) and len(read(server)["workers"]) == WORKERS)
        live = {f"slow-{worker['pid']}.json" for worker in read(server)["workers"]}
        wait_for(lambda: {path.name for path in (tmp_path / "metrics").glob("slow-*.json")} == live)
