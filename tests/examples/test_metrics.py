"""The orders service's /metrics adds up across workers: exactly the requests sent, through a killed worker
and a rolling restart, with one series for any number of unknown paths, and /health detail shows them all."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.examples.conftest import Api, orders_service
from tests.support.faults import faults_only
from tests.support.metrics import Series, fire, scrape, series_of
from tests.support.servers import ServeProcess, wait_for

ROUTE = "/api/orders/{order_id}"


def answered(series: Series, route: str = ROUTE, status: str = "200") -> float:
    return sum(series_of(series, "http_requests_total", method="GET", route=route, status=status).values())


def start(tmp_path: Path, workers: int = 4) -> AbstractContextManager[ServeProcess]:
    """An orders service of its own, counting from zero."""
    return orders_service("sqlite", tmp_path, WORKERS=str(workers))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """4 workers shared by the tests that neither kill nor replace one; each counts a series no other
    of them touches (the order route's 200s, the `unmatched` 404s), so each still counts from zero."""
    with start(tmp_path_factory.mktemp("metrics")) as server:
        wait_for(lambda: len(server.worker_pids()) == 4, timeout=60)  # the load meets every worker
        yield server


def order_path(api: Api) -> str:
    return f"/api/orders/{api.create().json()['id']}"


def test_a_thousand_requests_read_a_thousand(server: ServeProcess, api: Api) -> None:
    """4 workers, 1,000 GETs of one order: the scraped count for its route template is exactly 1,000."""
    path = order_path(api)
    assert fire(server.url, str(api.token), [path] * 1000) == [200] * 1000
    assert answered(scrape(server.url)) == 1000


@pytest.mark.posix
def test_a_killed_worker_keeps_its_counts(tmp_path: Path) -> None:
    """A worker killed between two halves of the run is replaced, and its requests still count."""
    # 2 workers are enough: one killed, one serving while its replacement starts.
    with start(tmp_path, workers=2) as server, Api.login(server.url, "admin", "admin") as api:
        wait_for(lambda: len(server.worker_pids()) == 2)  # all up: the one newcomer is the replacement
        path = order_path(api)
        assert fire(server.url, str(api.token), [path] * 500) == [200] * 500
        before = server.worker_pids()
        os.kill(max(before), signal.SIGKILL)
        wait_for(lambda: len(server.worker_pids() - before) == 1, timeout=30)
        assert fire(server.url, str(api.token), [path] * 500) == [200] * 500
        assert answered(scrape(server.url)) == 1000


@faults_only("a killed worker's counts (above) and the cluster's sums cover the merged files")
@pytest.mark.posix
def test_a_rolling_restart_keeps_every_count(tmp_path: Path) -> None:
    """SIGHUP replaces every worker while requests run: the total is still every request answered."""
    with start(tmp_path, workers=2) as server, Api.login(server.url, "admin", "admin") as api:
        wait_for(lambda: len(server.worker_pids()) == 2)
        path = order_path(api)
        assert fire(server.url, str(api.token), [path] * 500) == [200] * 500
        before = server.worker_pids()
        server.signal(signal.SIGHUP)
        statuses = fire(server.url, str(api.token), [path] * 500)
        wait_for(lambda: not server.worker_pids() & before and len(server.worker_pids()) == 2, timeout=60)
        assert statuses == [200] * 500
        assert answered(scrape(server.url)) == 1000


def test_unknown_paths_add_at_most_one_series(server: ServeProcess, api: Api) -> None:
    """1,000 random paths: one `unmatched` 404 series, however many paths."""
    scrape(server.url)  # a scrape's own series exists from the second scrape on
    before = set(scrape(server.url))
    paths = [f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}" for _ in range(1000)]
    assert set(fire(server.url, str(api.token), paths)) == {404}
    after = scrape(server.url)
    added = {key for key in set(after) - before if key[0] == "http_requests_total"}
    assert len(added) <= 1
    assert answered(after, route="unmatched", status="404") == 1000


def test_health_detail_shows_every_worker(server: ServeProcess) -> None:
    """Whichever worker answers, /health lists all 4 workers and their totals."""
    wait_for(lambda: len(server.worker_pids()) == 4)
    report = wait_for(lambda: _workers(server) if len(_workers(server)["workers"]) == 4 else None)
    pids = {worker["pid"] for worker in report["workers"]}
    assert pids == server.worker_pids()
    assert report["totals"]["workers"] == 4
    assert report["totals"]["rss_mb"] == pytest.approx(sum(w["rss_mb"] for w in report["workers"]), abs=0.5)


def _workers(server: ServeProcess) -> dict[str, Any]:
    return httpx.get(f"{server.url}/health", timeout=10).json()["checks"]["workers"]
