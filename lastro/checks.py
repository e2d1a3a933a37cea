"""The health checks and observers start-up registers for lastro's own parts, one factory each.

Each returns the coroutine function `/health` calls (see `lastro.health`); a check that raises shows as
failing, and `CheckFailed` carries the details with the failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lastro.coordination.events import Broadcast
from lastro.coordination.jobs import DEGRADED_AFTER, Jobs, RunObserver
from lastro.db.engine import Database
from lastro.health import CheckFailed, CheckResult
from lastro.monitor import worker_report
from lastro.observability.metrics import Metrics
from lastro.ratelimit.limiter import RateLimiter
from lastro.state import ServiceState

__all__ = [
    "broadcast_check",
    "job_metrics",
    "jobs_check",
    "pool_check",
    "rate_limit_check",
    "tasks_check",
    "workers_check",
]


def workers_check(metrics: Metrics) -> Callable[[], Any]:
    async def check() -> CheckResult:
        return worker_report(metrics)

    return check


def pool_check(database: Database) -> Callable[[], Any]:
    async def check() -> CheckResult:
        return dict(database.pool_status())

    return check


def rate_limit_check(limiter: RateLimiter) -> Callable[[], Any]:
    async def check() -> CheckResult:
        await limiter.probe()  # an idle worker learns of an outage (or its end) here
        return limiter.statistics()

    return check


def job_metrics(metrics: Metrics) -> RunObserver:
    """Periodic jobs in /metrics and the dashboard, beside the background tasks."""

    def observe(job: str, outcome: str, failures: int) -> None:
        if outcome in ("ok", "error"):
            metrics.job_runs.labels(job, "success" if outcome == "ok" else "failure").inc()
        metrics.job_failures_in_a_row.labels(job).set(failures)
        metrics.job_degraded.labels(job).set(1 if failures >= DEGRADED_AFTER else 0)

    return observe


def jobs_check(jobs: Jobs) -> Callable[[], Any]:
    """Each periodic job's status; failing but not critical (the worker stays ready) when one is degraded."""

    async def check() -> CheckResult:
        statuses = await jobs.statuses()
        degraded = sorted(name for name, status in statuses.items() if status["state"] == "degraded")
        if degraded:
            raise CheckFailed(f"degraded: {', '.join(degraded)}", jobs=statuses)
        return {"jobs": statuses}

    return check


def broadcast_check(broadcast: Broadcast) -> Callable[[], Any]:
    async def check() -> CheckResult:
        statistics = broadcast.statistics()
        if not statistics.get("connected", True):
            raise CheckFailed(
                f"the event backend is unreachable: {statistics.get('last_error')}", **statistics
            )
        return statistics

    return check


def tasks_check(state: ServiceState) -> Callable[[], Any]:
    async def check() -> CheckResult:
        if not state.tasks.healthy:
            raise RuntimeError(f"a background task is failing: {state.tasks.statuses()}")
        return {"tasks": state.tasks.statuses()}

    return check
