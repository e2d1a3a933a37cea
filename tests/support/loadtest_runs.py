"""Runs of `lastro loadtest` built from figures, for the tests of what is made of them (no Locust)."""

from __future__ import annotations

from typing import Any

from lastro.loadtest.plan import Plan, Thresholds
from lastro.loadtest.results import Run, Step

__all__ = ["make_run", "make_step"]

THRESHOLDS = Thresholds(500, 1000, 1.0)


def make_step(users: int, p95: float = 100, failures: int = 0, **figures: Any) -> Step:
    """A 10 s window of `users` at 2 requests a second each; a verdict from the default thresholds."""
    requests = figures.pop("requests", users * 20)
    p99 = figures.pop("p99_ms", p95 * 1.5)
    error_percent = 100 * failures / requests if requests else 100.0
    return Step(
        users=users,
        seconds=10.0,
        requests=requests,
        failures=failures,
        p50_ms=p95 / 3,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=p99 * 2,
        verdict=THRESHOLDS.verdict(p95, p99, error_percent),
        **figures,
    )


def make_run(*steps: Step, workers: int | None = 2, cpu_count: int = 4) -> Run:
    plan = Plan(tuple(step.users for step in steps) or (1,), 10.0, THRESHOLDS)
    machine = {"cpu": "test CPU", "cpu_count": cpu_count, "ram_gb": 8.0, "python": "3.11", "lastro": "0"}
    return Run(
        "http://127.0.0.1:8000/", "GET /", plan, machine, workers, list(steps), "2026-01-01T00:00:00+00:00"
    )
