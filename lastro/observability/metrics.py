"""Prometheus metrics that add up across a service's workers.

`lastro serve` points `PROMETHEUS_MULTIPROC_DIR` at a directory in shared memory (wiped when the supervisor
starts, removed when it stops), and every worker writes its counts there through prometheus_client's
multiprocess mode: a scrape answered by any worker reads every worker's files, those of the workers that
have exited included, so a counter neither drops when a worker is recycled nor counts twice. Gauges of live
state (`livesum`, `liveall`) are forgotten when the supervisor sees their worker exit. Without that
variable (a plain `uvicorn app:app`, a test client) the figures are this process's own.

prometheus_client picks its storage when it is first imported, from the environment: nothing here imports
it before `Metrics.open()`, which runs in a worker's start-up, after the supervisor has set the variable.

The series, their labels and what they mean are listed in the README ("Metrics").
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lastro.observability.metric_files import reading

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.metrics_core import Metric

    from lastro.observability.slowest import SlowestRequests

__all__ = [
    "DASHBOARD_ASSETS_PREFIX",
    "DASHBOARD_DATA_PATH",
    "DASHBOARD_PATH",
    "DIRECTORY_ENV",
    "LATENCY_BUCKETS",
    "METHODS",
    "METRICS_PATH",
    "OBSERVER_ROUTES",
    "UNMATCHED",
    "Metrics",
]

DIRECTORY_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
UNMATCHED = "unmatched"  # the route label of every path no route matched: one series, however many paths
OTHER_METHOD = "OTHER"
# Where the service's observers (Prometheus, the dashboard) read it, answered by `lastro.metrics_endpoint`
# and `lastro.dashboard`.
METRICS_PATH = "/metrics"
DASHBOARD_PATH = "/admin/dashboard"
DASHBOARD_DATA_PATH = "/admin/dashboard.json"
DASHBOARD_ASSETS_PREFIX = "/admin/dashboard/assets/"
# Their routes: counted like any other, but left out of the dashboard's rates, latencies and slowest
# requests, which are about the application's own traffic.
OBSERVER_ROUTES = frozenset(
    {METRICS_PATH, DASHBOARD_PATH, DASHBOARD_DATA_PATH, DASHBOARD_ASSETS_PREFIX + "{name}"}
)
STARTED_FILE = "started.json"  # in the shared directory: when the service's counts started
Mode = Literal["livesum", "livemax", "liveall"]  # gauges of live workers: a dead worker's are dropped


class Metrics:
    """One worker's metrics: what the middleware counts per request, and what the monitor samples."""

    def __init__(self, directory: Path | None, started_at: float | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.directory = directory
        self.started_at = time.time() if started_at is None else started_at  # when the counts started
        self.slowest: SlowestRequests | None = None  # kept when the dashboard is enabled
        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=False)
        registry = self.registry

        def gauge(name: str, doc: str, mode: Mode, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=registry, multiprocess_mode=mode)

        self.requests: Counter = Counter(
            "http_requests", "HTTP requests answered", ("method", "route", "status"), registry=registry
        )
        self.durations: Histogram = Histogram(
            "http_request_duration_seconds",
            "Time from a request's arrival to the end of its response",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_progress = gauge(
            "http_requests_in_progress", "HTTP requests being served, as last sampled", "livesum"
        )
        self.connections = gauge("lastro_open_connections", "Open HTTP connections", "livesum")
        self.pool_size = gauge("lastro_db_pool_size", "Connections the database pools may hold", "livesum")
        self.pool_in_use = gauge("lastro_db_pool_in_use", "Database connections checked out", "livesum")
        self.pool_idle = gauge("lastro_db_pool_idle", "Idle pooled database connections", "livesum")
        self.db_retries: Counter = Counter(
            "lastro_db_retries", "Units of work retried after a transient database error", registry=registry
        )
        self.breaker_open = gauge(
            "lastro_db_breaker_open", "1 while a worker's database circuit breaker is open", "livemax"
        )
        self.write_queue = gauge(
            "lastro_sqlite_write_queue_depth", "Write units waiting for the SQLite writer", "livesum"
        )
        self.shed: Counter = Counter(
            "lastro_requests_shed", "Requests refused with 503 by back-pressure", registry=registry
        )
        self.rate_limited: Counter = Counter(
            "lastro_requests_rate_limited", "Requests refused with 429 by a rate limit", registry=registry
        )
        self.job_runs: Counter = Counter(
            "lastro_job_runs", "Background job runs", ("job_name", "outcome"), registry=registry
        )
        job = ("job_name",)
        self.job_failures_in_a_row = gauge(
            "lastro_job_consecutive_failures", "Failures in a row of a background job", "livemax", job
        )
        self.job_degraded = gauge(
            "lastro_job_degraded", "1 once a background job has failed 5 times in a row", "livemax", job
        )
        self.rss_limit = gauge(
            "lastro_worker_rss_limit_bytes", "MAX_WORKER_RSS_MB in bytes; 0: none", "livemax"
        )
        # Per worker: multiprocess mode adds the `pid` label itself; this process alone names its own.
        labels = () if directory is not None else ("pid",)
        self._worker_labels = () if directory is not None else (str(os.getpid()),)

        def worker(name: str, doc: str) -> Gauge:
            return gauge(f"lastro_worker_{name}", f"{doc} of each worker", "liveall", labels)

        self.worker_rss = worker("rss_bytes", "Resident memory")
        self.worker_cpu = worker("cpu_seconds", "CPU time")
        self.worker_cpu_percent = worker("cpu_percent", "CPU use over the last sample, % of one core,")
        self.worker_age = worker("age_seconds", "Seconds since the start")
        self.worker_threads = worker("threads", "Threads")
        self.worker_fds = worker("open_fds", "Open file descriptors")
        self.worker_requests = worker("requests", "Requests answered")
        self._answered: dict[tuple[str, str, int], Callable[[float], None]] = {}
        self.served = 0  # requests this worker answered, for the monitor

    @classmethod
    def open(cls) -> Metrics:
        """Shared by the workers when `PROMETHEUS_MULTIPROC_DIR` is set (`lastro serve` sets it), else this
        process's own."""
        directory = os.environ.get(DIRECTORY_ENV)
        if not directory:
            return cls(None)
        return cls(Path(directory), _counts_started(Path(directory)))

    def answered(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """Count one answered request; its label values are resolved once, then looked up."""
        key = (method, route or UNMATCHED, status)
        record = self._answered.get(key)
        if record is None:
            record = self._answered[key] = self._recorder(*key)
        record(seconds)

    def _recorder(self, method: str, route: str, status: int) -> Callable[[float], None]:
        method = method if method in METHODS else OTHER_METHOD
        counter = self.requests.labels(method, route, str(status))
        histogram = self.durations.labels(method, route)

        def record(seconds: float) -> None:
            counter.inc()
            histogram.observe(seconds)
            self.served += 1

        if len(self._answered) > 10_000:  # only label values the app defines get here; a safety valve
            self._answered.clear()
        return record

    def worker(self, gauge: Gauge) -> Any:
        """The child of a per-worker gauge for this worker."""
        return gauge.labels(*self._worker_labels) if self._worker_labels else gauge

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text of the whole service (every worker's files), and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        registry = self._service_registry()
        with self._files_held():
            return generate_latest(registry), CONTENT_TYPE_LATEST

    def families(self) -> list[Metric]:
        """Every metric family of the whole service, as a scrape reads them."""
        registry = self._service_registry()
        with self._files_held():
            return list(registry.collect())

    def _service_registry(self) -> CollectorRegistry:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        if self.directory is None:
            return self.registry
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=str(self.directory))  # type: ignore[no-untyped-call]
        return registry

    def _files_held(self) -> contextlib.AbstractContextManager[None]:
        return reading(self.directory) if self.directory is not None else contextlib.nullcontext()


def _counts_started(directory: Path) -> float:
    """When the first worker of this run opened the directory (which the supervisor empties at start)."""
    path = directory / STARTED_FILE
    now = time.time()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with contextlib.suppress(OSError, ValueError):  # else being written by the first: within a moment
            return float(path.read_text())
        return now
    except OSError:  # no directory to share (yet): this worker's own start is the best there is
        return now
    with os.fdopen(descriptor, "w") as file:
        file.write(repr(now))
    return now
