"""The steps, run with Locust as a library: one `Environment` and local runner for the whole run.

Each step sets the user count (`runner.start`), lets the users settle for the warm-up, resets Locust's
statistics, and reads them again when the window ends; around the window it samples the CPU of Locust's
own process, of the machine, and of the target's processes when they run here. Every wait is against a
deadline on the monotonic clock, and `runner.quit()` ends the users whatever they are doing, so a run
lasts what the plan says. Imports Locust (and so gevent's monkey-patching): only the command imports it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psutil
from locust import User
from locust.env import Environment
from locust.runners import Runner

from lastro.loadtest.machine import ServerProcesses, cpu_percent_between
from lastro.loadtest.results import Run, Step

__all__ = ["Cancel", "Progress", "run_steps"]

Progress = Callable[[float, str], None]  # (seconds since the start, what runs now)
TICK = 0.25  # seconds between two progress updates
GIVE_UP_ERROR_PERCENT = 50.0  # a step this bad ends the run: higher steps would only pile on
INTERRUPTED = "interrupted (Ctrl-C); the steps measured until then are reported"


class Cancel:
    """A SIGINT handler that only records the request: the step loop stops at its next tick, at a point
    of its own choosing, instead of a KeyboardInterrupt raised wherever gevent happens to be."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: object) -> None:
        self.requested = True


class _Cancelled(Exception):
    pass


def _wait_until(deadline: float, started: float, label: str, progress: Progress, cancel: Cancel) -> None:
    while (left := deadline - time.monotonic()) > 0:
        if cancel.requested:
            raise _Cancelled
        time.sleep(min(TICK, left))  # gevent's, once Locust has patched: the users run meanwhile
        progress(time.monotonic() - started, label)


def _exception_count(runner: Runner) -> int:
    return sum(int(entry.get("count", 0)) for entry in runner.exceptions.values())


def run_steps(
    run: Run,
    user_classes: list[type[User]],
    origin: str,
    server: ServerProcesses | None,
    progress: Progress,
    cancel: Cancel,
) -> None:
    """Measure each step of `run.plan` into `run.steps`; stop early (saying why) when `cancel` is requested
    or a step failed half its requests."""
    logging.getLogger("locust").setLevel(logging.CRITICAL)  # the run reports failures; no log lines
    environment = Environment(user_classes=user_classes, host=origin)
    runner = environment.create_local_runner()
    statuses: Counter[str] = Counter()

    def count_status(response: Any = None, exception: Any = None, **_: Any) -> None:
        if exception is not None:
            statuses[str(getattr(response, "status_code", None) or 0)] += 1

    environment.events.request.add_listener(count_status)  # type: ignore[no-untyped-call]
    plan, own = run.plan, psutil.Process()
    started = time.monotonic()
    try:
        for index, users in enumerate(plan.users):
            step_start = time.monotonic()
            label = f"{users} users ({index + 1}/{len(plan.users)})"
            runner.start(users, spawn_rate=min(100.0, plan.spawn_rate(index)))
            _wait_until(step_start + plan.warm_up, started, label, progress, cancel)
            environment.stats.reset_all()
            statuses.clear()
            exceptions = _exception_count(runner)
            psutil.cpu_percent(None)
            own_cpu, server_cpu = sum(own.cpu_times()[:2]), server.cpu_seconds() if server else {}
            window_start = time.monotonic()
            _wait_until(step_start + plan.step_duration, started, label, progress, cancel)
            seconds = time.monotonic() - window_start
            step = _step(run, environment, users, seconds, statuses, runner, exceptions)
            step = _with_cpu(step, seconds, own, own_cpu, server, server_cpu)
            run.steps.append(step)
            if step.error_percent >= GIVE_UP_ERROR_PERCENT and index + 1 < len(plan.users):
                run.interrupted = (
                    f"at {users} users {step.error_percent:.0f}% of the requests failed; "
                    "the higher steps were not run"
                )
                break
    except _Cancelled:
        run.interrupted, run.cancelled = INTERRUPTED, True
    finally:
        runner.quit()


def _step(
    run: Run,
    environment: Environment,
    users: int,
    seconds: float,
    statuses: Counter[str],
    runner: Runner,
    exceptions_before: int,
) -> Step:
    total = environment.stats.total
    p50, p95, p99 = (
        float(total.get_response_time_percentile(p)) if total.num_requests else 0.0 for p in (0.5, 0.95, 0.99)
    )
    requests, failures = total.num_requests, total.num_failures
    step = Step(
        users=users,
        seconds=round(seconds, 3),
        requests=requests,
        failures=failures,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=float(total.max_response_time or 0),
        verdict="ok",
        statuses=dict(statuses),
        exceptions=_exception_count(runner) - exceptions_before,
        endpoints=_endpoints(environment),
        cpu_count=psutil.cpu_count() or 1,
    )
    return replace(step, verdict=run.plan.thresholds.verdict(p95, p99, step.error_percent))


def _endpoints(environment: Environment) -> dict[str, dict[str, float]]:
    found = {}
    for entry in environment.stats.entries.values():
        if entry.num_requests:
            found[f"{entry.method} {entry.name}"] = {
                "requests": entry.num_requests,
                "failures": entry.num_failures,
                **{
                    f"p{round(p * 100)}_ms": float(entry.get_response_time_percentile(p))
                    for p in (0.5, 0.95, 0.99)
                },
            }
    return dict(sorted(found.items()))


def _with_cpu(
    step: Step,
    seconds: float,
    own: psutil.Process,
    own_before: float,
    server: ServerProcesses | None,
    server_before: dict[int, float],
) -> Step:
    own_after = sum(own.cpu_times()[:2])
    server_after = server.cpu_seconds() if server else {}
    return replace(
        step,
        loadgen_cpu_percent=round(100 * (own_after - own_before) / seconds, 1),
        machine_cpu_percent=round(psutil.cpu_percent(None), 1),
        server_cpu_percent=(
            None
            if (value := cpu_percent_between(server_before, server_after, seconds)) is None
            else round(value, 1)
        ),
    )
