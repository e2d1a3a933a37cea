"""The orders cleanup as a periodic job under real `lastro serve` processes: once per period across 4
workers of one machine, and across two instances on one PostgreSQL database (`make faults`; `make test`
runs the three-node cluster's job test instead); a killed leader's lease passes to another worker (or
instance) within two periods. The runs are read from the database.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from lastro.coordination.tables import job_runs
from tests.examples.conftest import (
    SECRET_KEY,
    Api,
    fresh_database,
    is_problem,
    migrate_orders,
    orders_service,
    start_orders,
)
from tests.support.faults import faults_only
from tests.support.servers import ServeProcess, wait_for

INTERVAL = 1.0
PERIODS = 6  # periods the once-per-period tests count: a doubled run shows in any one of them
JOB = "orders-cleanup"


def runs(url: str) -> list[dict[str, Any]]:
    """Every recorded run of the cleanup, in slot order."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            statement = select(job_runs).where(job_runs.c.job == JOB).order_by(job_runs.c.slot, job_runs.c.id)
            return [dict(row) for row in connection.execute(statement).mappings()]
    finally:
        engine.dispose()


def slots_span(url: str, count: int) -> list[dict[str, Any]]:
    """Runs once `count` periods have passed since the latest run: the runs of those `count` periods."""
    first = wait_for(lambda: runs(url), timeout=30)[-1]["slot"]  # the service may have run for a while
    wait_for(lambda: runs(url)[-1]["slot"] >= first + count, timeout=count * INTERVAL + 30)
    return [run for run in runs(url) if first <= run["slot"] < first + count]


def assert_once_per_slot(recorded: list[dict[str, Any]]) -> None:
    slots = [run["slot"] for run in recorded]
    assert len(slots) == len(set(slots)), f"a slot ran twice: {slots}"
    assert all(run["outcome"] == "ok" for run in recorded), recorded


def kill_leader(url: str, kill: Any) -> tuple[int, float, list[dict[str, Any]]]:
    """Kill whoever ran the latest run: its pid, the seconds until the next run started, and the 3 runs
    that followed the kill."""

    def between_runs() -> int | None:
        """The latest run's pid once it has ended: a run killed midway would stay `running`, not `ok`."""
        latest = runs(url)[-1]
        return None if latest["outcome"] == "running" else int(latest["pid"])

    leader: int = wait_for(between_runs)
    kill(leader)
    killed_at = time.time()

    def after() -> list[dict[str, Any]]:
        return [run for run in runs(url) if run["started_at"] > killed_at]

    wait_for(lambda: len(after()) >= 3, timeout=3 * INTERVAL + 30)
    recorded = after()
    return leader, recorded[0]["started_at"] - killed_at, recorded


@pytest.fixture(scope="module")
def four_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One machine, 4 workers, a 1 s interval, shared by the module's tests: none needs a service of its
    own, and the one that kills a worker leaves 4 workers behind (its replacement), runs recorded once."""
    directory = tmp_path_factory.mktemp("jobs")
    with orders_service("sqlite", directory, WORKERS="4", CLEANUP_INTERVAL_SECONDS=str(INTERVAL)) as server:
        yield server


def test_four_workers_run_the_cleanup_once_per_period(four_workers: ServeProcess) -> None:
    """4 workers, a 1 s interval, 6 s: 5 to 7 runs, never two for one period."""
    url = four_workers.env["DATABASE_URL"]
    recorded = slots_span(url, PERIODS)
    worker_pids = four_workers.worker_pids()
    assert PERIODS - 1 <= len(recorded) <= PERIODS + 1
    assert_once_per_slot(recorded)
    assert {run["pid"] for run in recorded} <= worker_pids


def test_admin_jobs_lists_recent_runs_newest_first(four_workers: ServeProcess) -> None:
    """GET /api/admin/jobs: the runs, newest first, with job, start, duration, outcome, host and pid."""
    wait_for(lambda: len(runs(four_workers.env["DATABASE_URL"])) >= 3, timeout=30)
    with Api.login(four_workers.url, "admin", "admin") as admin:
        response = admin.get("/api/admin/jobs", params={"limit": 2})
    metrics = httpx.get(f"{four_workers.url}/metrics", timeout=20).text
    document = response.json()
    assert response.status_code == 200, response.text
    items = document["items"]
    assert len(items) == 2
    assert items[0]["started_at"] > items[1]["started_at"]
    assert {"job", "started_at", "duration_ms", "outcome", "host", "pid"} <= set(items[0])
    assert items[0]["job"] == JOB
    assert document["jobs"][JOB]["state"] == "ok"
    assert f'lastro_job_runs_total{{job_name="{JOB}",outcome="success"}}' in metrics


def test_admin_jobs_refuses_anyone_but_an_administrator(four_workers: ServeProcess) -> None:
    """No token: 401; an ordinary user: 403; a limit out of bounds: 422; all as problem+json."""
    with Api.login(four_workers.url, "admin", "admin") as admin:
        with Api(four_workers.url) as anonymous:
            assert is_problem(anonymous.get("/api/admin/jobs"), 401)
        with admin.new_tenant() as user:
            assert is_problem(user.get("/api/admin/jobs"), 403)
        assert is_problem(admin.get("/api/admin/jobs", params={"limit": 0}), 422)
        assert is_problem(admin.get("/api/admin/jobs", params={"limit": 100_000}), 422)
        assert is_problem(admin.get("/api/admin/jobs", params={"limit": "many"}), 422)


@pytest.mark.posix
def test_a_killed_leader_worker_is_replaced_within_two_periods(four_workers: ServeProcess) -> None:
    """SIGKILL the worker that ran the last run: another worker runs the cleanup within 2 intervals."""
    url = four_workers.env["DATABASE_URL"]
    wait_for(lambda: len(runs(url)) >= 2, timeout=30)
    leader, takeover, recorded = kill_leader(url, lambda pid: os.kill(pid, signal.SIGKILL))
    assert takeover <= 2 * INTERVAL
    assert_once_per_slot(runs(url))
    assert leader not in {run["pid"] for run in recorded}


def workers_of(server: ServeProcess) -> set[int]:
    """The pids of the workers of `server` that started the service."""
    return {line["pid"] for line in server.events("service started") if "pid" in line}


def two_instances(stack: ExitStack, tmp_path: Path, url: str) -> list[ServeProcess]:
    """Two `lastro serve` of the orders app, 2 workers each, on one PostgreSQL database, no Redis."""
    settings = {
        "DATABASE_URL": url,
        "SECRET_KEY": SECRET_KEY,
        "INSTANCES": "1",
        "WORKERS": "2",
        "DB_POOL_SIZE": "3",
        "DB_MAX_OVERFLOW": "1",
        "CLEANUP_INTERVAL_SECONDS": str(INTERVAL),
    }
    directories = [tmp_path / "a", tmp_path / "b"]
    for directory in directories:
        directory.mkdir()
    migrate_orders(directories[0], **settings)  # the one database of both
    return start_orders(stack, [(directory, settings) for directory in directories])


@pytest.mark.postgres
@faults_only("tests/cluster/test_jobs.py runs a job once per period on three nodes")
def test_two_instances_on_postgres_run_the_cleanup_once_per_period(tmp_path: Path) -> None:
    """Two instances on one PostgreSQL database, a 1 s interval, 6 s: 5 to 7 runs, one per period."""
    with fresh_database("postgres", tmp_path) as url, ExitStack() as stack:
        two_instances(stack, tmp_path, url)
        recorded = slots_span(url, PERIODS)
    assert PERIODS - 1 <= len(recorded) <= PERIODS + 1
    assert_once_per_slot(recorded)


@faults_only("tests/cluster/test_jobs.py kills the leading node and another takes over")
@pytest.mark.posix
@pytest.mark.postgres
def test_a_killed_leader_instance_is_replaced_within_two_periods(tmp_path: Path) -> None:
    """SIGKILL the whole process group of the instance that leads: the other one takes over in 2 intervals."""
    with fresh_database("postgres", tmp_path) as url, ExitStack() as stack:
        instances = two_instances(stack, tmp_path, url)
        wait_for(lambda: len(runs(url)) >= 2, timeout=30)

        def kill_instance(pid: int) -> None:
            (server,) = [server for server in instances if pid in workers_of(server)]
            os.killpg(server.process.pid, signal.SIGKILL)
            instances.remove(server)

        _, takeover, recorded = kill_leader(url, kill_instance)
        (survivor,) = instances
        assert {run["pid"] for run in recorded} <= workers_of(survivor)
        everything = runs(url)  # before the database is dropped
    assert takeover <= 2 * INTERVAL
    assert_once_per_slot(everything)
