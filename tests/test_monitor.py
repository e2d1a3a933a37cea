"""The resource monitor: each worker's figures into the metrics, and a worker over its memory recycled."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from lastro.health import HealthRegistry
from lastro.monitor import Monitor, worker_report
from lastro.observability.logging import configure_logging
from lastro.observability.metrics import Metrics
from lastro.observability.resources import ProcessSample, ProcessSampler
from lastro.observability.slowest import SlowestRequests, slow_file
from lastro.settings import get_settings
from lastro.state import ServiceState
from lastro.tasks import BackgroundTasks
from tests.support.clock import FakeTime
from tests.support.metrics import parse, series_of

MIB = 1024 * 1024


class FixedSampler(ProcessSampler):
    """Reports the memory a test sets, and otherwise this process's real figures."""

    def __init__(self, rss_mb: float) -> None:
        super().__init__()
        self.rss_mb = rss_mb

    def sample(self) -> ProcessSample:
        real = super().sample()
        return ProcessSample(
            pid=real.pid,
            rss_bytes=int(self.rss_mb * MIB),
            rss_percent=real.rss_percent,
            cpu_seconds=real.cpu_seconds,
            cpu_percent=12.5,
            threads=real.threads,
            open_fds=real.open_fds,
            age_seconds=real.age_seconds,
        )


def monitor(rss_mb: float = 100, recycle: list[str] | None = None, **settings: str) -> Monitor:
    state = ServiceState(settings=get_settings(**settings), health=HealthRegistry(version="1"))
    hook = (lambda: recycle.append("recycled")) if recycle is not None else None
    return Monitor(state, Metrics(None), sampler=FixedSampler(rss_mb), recycle=hook)


def gauge(watcher: Monitor, name: str) -> float:
    values = series_of(parse(watcher.metrics.render()[0].decode()), name)
    assert len(values) == 1, values
    return next(iter(values.values()))


def test_a_sample_writes_the_worker_figures() -> None:
    """Memory, CPU and requests answered land in this worker's gauges."""
    watcher = monitor(rss_mb=64)
    watcher.metrics.answered("GET", "/x", 200, 0.001)
    watcher.sample()
    assert gauge(watcher, "lastro_worker_rss_bytes") == 64 * MIB
    assert gauge(watcher, "lastro_worker_cpu_percent") == 12.5
    assert gauge(watcher, "lastro_worker_requests") == 1


def test_the_memory_limit_is_published() -> None:
    """MAX_WORKER_RSS_MB is a gauge too, so an alert can compare each worker with it."""
    assert gauge(monitor(MAX_WORKER_RSS_MB="300"), "lastro_worker_rss_limit_bytes") == 300 * MIB


def test_a_worker_over_its_memory_is_recycled_once() -> None:
    """Past MAX_WORKER_RSS_MB the worker asks to be replaced, and asks only once."""
    asked: list[str] = []
    watcher = monitor(rss_mb=301, recycle=asked, MAX_WORKER_RSS_MB="300")
    watcher.sample()
    watcher.sample()
    assert asked == ["recycled"]


def test_a_worker_under_its_memory_stays() -> None:
    """At the limit or below, nothing happens."""
    asked: list[str] = []
    watcher = monitor(rss_mb=300, recycle=asked, MAX_WORKER_RSS_MB="300")
    watcher.sample()
    assert asked == []


def test_without_a_limit_memory_never_recycles() -> None:
    """MAX_WORKER_RSS_MB=0 (the default) leaves every worker alone."""
    asked: list[str] = []
    monitor(rss_mb=10_000, recycle=asked).sample()
    assert asked == []


@pytest.fixture
def log_records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    configure_logging("INFO", "json")  # lastro's logs go through stdlib logging, where caplog sees them
    return caplog


def test_a_lone_process_over_its_memory_only_warns(
    monkeypatch: pytest.MonkeyPatch, log_records: pytest.LogCaptureFixture
) -> None:
    """Without a supervisor to replace it, a process that stopped itself would stop the service."""
    monkeypatch.delenv("LASTRO_SERVE_WORKER", raising=False)
    state = ServiceState(settings=get_settings(MAX_WORKER_RSS_MB="300"), health=HealthRegistry(version="1"))
    watcher = Monitor(state, Metrics(None), sampler=FixedSampler(301))
    watcher.sample()
    watcher.sample()
    warnings = [record for record in log_records.records if record.name == "lastro.monitor"]
    assert [record.msg["event"] for record in warnings] == [  # type: ignore[index]
        "worker over MAX_WORKER_RSS_MB, not recycled: no supervisor (run it with lastro serve)"
    ]


@pytest.mark.anyio
async def test_a_failing_task_is_counted_and_degraded_after_five() -> None:
    """Each failure adds a run of outcome failure; five failures mark the job degraded."""
    fake = FakeTime()
    tasks = BackgroundTasks(sleep=fake.sleep)
    failures = 0
    settled = asyncio.Event()

    async def flaky() -> None:
        nonlocal failures
        if failures < 5:
            failures += 1
            raise RuntimeError("cleanup failed")
        settled.set()
        await asyncio.Event().wait()

    state = ServiceState(settings=get_settings(), health=HealthRegistry(version="1"), tasks=tasks)
    watcher = Monitor(state, Metrics(None), sampler=FixedSampler(100))
    tasks.start("cleanup", flaky)
    try:
        await settled.wait()
        watcher.sample()
    finally:
        await tasks.stop()
    series = parse(watcher.metrics.render()[0].decode())
    assert series_of(series, "lastro_job_runs_total", job_name="cleanup", outcome="failure") == {
        frozenset({("job_name", "cleanup"), ("outcome", "failure")}): 5
    }
    assert series_of(series, "lastro_job_degraded", job_name="cleanup") == {
        frozenset({("job_name", "cleanup")}): 1
    }


def test_the_report_lists_each_worker_and_the_totals() -> None:
    """What /health detail shows: this worker's figures, and totals over every worker."""
    watcher = monitor(rss_mb=50)
    watcher.sample()
    report = worker_report(watcher.metrics)
    (worker,) = report["workers"]
    assert worker["rss_mb"] == 50.0
    assert worker["cpu_percent"] == 12.5
    assert report["totals"]["workers"] == 1
    assert report["totals"]["rss_mb"] == 50.0


def test_a_sample_publishes_the_slowest_requests(tmp_path: Path) -> None:
    """Under a shared directory, the other workers' dashboards read this worker's slowest requests."""
    state = ServiceState(settings=get_settings(), health=HealthRegistry(version="1"))
    metrics = Metrics(tmp_path)
    metrics.slowest = SlowestRequests()
    metrics.slowest.offer("GET", "/items/{item_id}", 200, 0.25, "request-1")
    Monitor(state, metrics, sampler=FixedSampler(100)).sample()
    (published,) = json.loads(slow_file(tmp_path, os.getpid()).read_text())
    assert (published["route"], published["duration_ms"], published["request_id"]) == (
        "/items/{item_id}",
        250.0,
        "request-1",
    )


@pytest.mark.anyio
async def test_a_task_that_finishes_is_one_successful_run() -> None:
    """A background task that returns counts one run of outcome success, once."""
    tasks = BackgroundTasks(sleep=FakeTime().sleep)

    async def once() -> None:
        return None

    state = ServiceState(settings=get_settings(), health=HealthRegistry(version="1"), tasks=tasks)
    watcher = Monitor(state, Metrics(None), sampler=FixedSampler(100))
    tasks.start("migrate-once", once)
    try:
        await asyncio.sleep(0)  # the task runs to its end
        watcher.sample()
        watcher.sample()
    finally:
        await tasks.stop()
    series = parse(watcher.metrics.render()[0].decode())
    assert series_of(series, "lastro_job_runs_total", job_name="migrate-once") == {
        frozenset({("job_name", "migrate-once"), ("outcome", "success")}): 1
    }
