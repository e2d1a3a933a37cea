"""The resource monitor: each worker samples itself and the service's state into the shared metrics.

Every `MONITOR_INTERVAL` seconds a worker writes its memory, CPU, threads, file descriptors, requests and
age, its database pool, retries, breaker and write queue, its connections and its background tasks into the
metrics (`lastro.observability.metrics`), where every worker's figures sit side by side: `/metrics` and
`/health` detail read them all, whichever worker answers. With the dashboard enabled it also publishes the
worker's slowest recent requests (`lastro.observability.slowest`).

`MAX_WORKER_RSS_MB` recycles a worker past that resident memory the way `MAX_REQUESTS` does by count: the
worker stops gracefully (its requests in flight finish, its keep-alive connections drain) and the supervisor
starts a fresh one, while the other workers keep serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import psutil

from lastro.db.breaker import BreakerState
from lastro.observability.connections import open_connections
from lastro.observability.logging import get_logger
from lastro.observability.metrics import Metrics
from lastro.observability.requests import IN_FLIGHT
from lastro.observability.resources import ProcessSample, ProcessSampler
from lastro.observability.slowest import publish
from lastro.state import ServiceState
from lastro.workers import SUPERVISED_ENV

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["DEGRADED_AFTER", "Monitor", "worker_report"]

logger = get_logger("lastro.monitor")
MIB = 1024 * 1024
DEGRADED_AFTER = 5  # failures in a row that make a background job degraded


def _stop_gracefully() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # the server drains and exits; the supervisor starts a fresh worker


class Monitor:
    def __init__(
        self,
        state: ServiceState,
        metrics: Metrics,
        *,
        sampler: ProcessSampler | None = None,
        recycle: Callable[[], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.sampler = sampler or ProcessSampler()
        self.interval = state.settings.MONITOR_INTERVAL
        self.rss_limit = state.settings.MAX_WORKER_RSS_MB * MIB
        # Only under a supervisor: a lone process that stopped itself would stop the service.
        supervised = os.environ.get(SUPERVISED_ENV) == "1"
        self.recycle = recycle if recycle is not None else (_stop_gracefully if supervised else None)
        self.recycling = False
        self._sleep = sleep
        self._retries = 0
        self._task_failures: dict[str, int] = {}
        self._finished: set[str] = set()
        metrics.rss_limit.set(self.rss_limit)

    async def run(self) -> None:
        while True:
            self.sample()
            await self._sleep(self.interval)

    def sample(self) -> ProcessSample:
        """Write this worker's figures into the metrics; recycle the worker if it is over its memory."""
        sample = self.sampler.sample()
        metrics = self.metrics
        metrics.worker(metrics.worker_rss).set(sample.rss_bytes)
        metrics.worker(metrics.worker_cpu).set(sample.cpu_seconds)
        metrics.worker(metrics.worker_cpu_percent).set(round(sample.cpu_percent, 1))
        metrics.worker(metrics.worker_age).set(round(sample.age_seconds, 1))
        metrics.worker(metrics.worker_threads).set(sample.threads)
        metrics.worker(metrics.worker_fds).set(sample.open_fds)
        metrics.worker(metrics.worker_requests).set(metrics.served)
        metrics.connections.set(open_connections())
        metrics.in_progress.set(len(IN_FLIGHT))  # sampled: two writes per request cost more than it tells
        self._sample_database()
        self._sample_tasks()
        self._publish_slowest()
        if self.rss_limit and sample.rss_bytes > self.rss_limit and not self.recycling:
            self._recycle(sample)
        return sample

    def _sample_database(self) -> None:
        state, metrics = self.state, self.metrics
        if state.database is not None:
            pool = state.database.pool_status()
            if pool:
                metrics.pool_size.set(pool["size"] + pool["max_overflow"])
                metrics.pool_in_use.set(pool["checked_out"])
                metrics.pool_idle.set(pool["checked_in"])
        if not state.is_open:
            return
        transactions = state.transactions
        retries = sum(transactions.retries.values())
        if retries > self._retries:
            metrics.db_retries.inc(retries - self._retries)
        self._retries = retries
        metrics.breaker_open.set(1 if transactions.breaker.state is BreakerState.OPEN else 0)
        writes = transactions.stats().get("writes")
        metrics.write_queue.set(writes["queued"] if writes else 0)

    def _sample_tasks(self) -> None:
        metrics = self.metrics
        for name, status in self.state.tasks.statuses().items():
            failures = int(status["failures"])  # type: ignore[call-overload]
            seen = self._task_failures.get(name, 0)
            new = failures if failures < seen else failures - seen  # below what was seen: it was reset
            if new > 0:
                metrics.job_runs.labels(name, "failure").inc(new)
            self._task_failures[name] = failures
            if status["state"] == "finished" and name not in self._finished:  # its one run ended well
                self._finished.add(name)
                metrics.job_runs.labels(name, "success").inc()
            metrics.job_failures_in_a_row.labels(name).set(failures)
            metrics.job_degraded.labels(name).set(1 if failures >= DEGRADED_AFTER else 0)

    def _publish_slowest(self) -> None:
        slowest, directory = self.metrics.slowest, self.metrics.directory
        if slowest is None:
            return
        slowest.rotate()
        if directory is not None:  # for the dashboard of whichever worker answers
            with contextlib.suppress(OSError):  # the directory going away at shutdown: nothing to tell
                publish(directory, slowest.recent())

    def _recycle(self, sample: ProcessSample) -> None:
        if self.recycle is None:
            logger.warning(
                "worker over MAX_WORKER_RSS_MB, not recycled: no supervisor (run it with lastro serve)",
                rss_mb=round(sample.rss_bytes / MIB, 1),
                limit_mb=self.rss_limit // MIB,
            )
            self.rss_limit = 0  # said once
            return
        self.recycling = True
        logger.warning(
            "worker over MAX_WORKER_RSS_MB: replacing it gracefully",
            rss_mb=round(sample.rss_bytes / MIB, 1),
            limit_mb=self.rss_limit // MIB,
            requests=self.metrics.served,
        )
        self.recycle()


_WORKER_FIELDS = {
    "lastro_worker_rss_bytes": "rss_bytes",
    "lastro_worker_cpu_percent": "cpu_percent",
    "lastro_worker_cpu_seconds": "cpu_seconds",
    "lastro_worker_threads": "threads",
    "lastro_worker_open_fds": "open_fds",
    "lastro_worker_requests": "requests",
    "lastro_worker_age_seconds": "age_seconds",
}


def worker_report(metrics: Metrics, families: list[Metric] | None = None) -> dict[str, Any]:
    """Every live worker's last sample, and the totals: what `/health` detail shows under `workers`.

    `families`: the service's metrics already read (`metrics.families()`), to read them once for several
    reports.
    """
    by_pid: dict[str, dict[str, Any]] = {}
    for family in metrics.families() if families is None else families:
        field = _WORKER_FIELDS.get(family.name)
        if field is None:
            continue
        for sample in family.samples:
            pid = sample.labels.get("pid", "")
            by_pid.setdefault(pid, {"pid": int(pid) if pid.isdigit() else pid})[field] = sample.value
    ram = psutil.virtual_memory().total
    workers = []
    for worker in sorted(by_pid.values(), key=lambda w: w.get("age_seconds", 0), reverse=True):
        rss = worker.pop("rss_bytes", 0)
        workers.append(
            {
                "pid": worker["pid"],
                "rss_mb": round(rss / MIB, 1),
                "rss_percent": round(100 * rss / ram, 2),
                "cpu_percent": worker.get("cpu_percent", 0.0),
                "cpu_seconds": round(worker.get("cpu_seconds", 0.0), 2),
                "threads": int(worker.get("threads", 0)),
                "open_fds": int(worker.get("open_fds", 0)),
                "requests": int(worker.get("requests", 0)),
                "age_seconds": worker.get("age_seconds", 0.0),
            }
        )
    totals = {
        "workers": len(workers),
        "rss_mb": round(sum(w["rss_mb"] for w in workers), 1),
        "rss_percent": round(sum(w["rss_percent"] for w in workers), 2),
        "cpu_percent": round(sum(w["cpu_percent"] for w in workers), 1),
        "threads": sum(w["threads"] for w in workers),
        "open_fds": sum(w["open_fds"] for w in workers),
        "requests": sum(w["requests"] for w in workers),
    }
    return {"workers": workers, "totals": totals}
