"""What a run's steps say: the capacity in users, and whether more workers would help.

Only what was measured is claimed. The workers' CPU tells a service that is CPU-bound (more workers help
while the machine has idle cores) from one waiting on something else (a lock, the database, I/O: more
workers do not help). A load generator on the same machine takes CPU from the service, and past about one
busy core of its own it measures itself: both are said when seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lastro.loadtest.results import Run, Step

__all__ = ["Assessment", "assess"]

BUSY_WORKER = 80.0  # % of a core: a worker this busy is CPU-bound
BUSY_MACHINE = 90.0  # % of all cores
BUSY_LOADGEN = 90.0  # % of a core: one Locust process can use one core at most


@dataclass
class Assessment:
    capacity: int | None  # the largest user count that was ok, with every smaller one ok too
    limit: Step | None  # the first step that was not ok
    recommended_workers: int | None
    findings: list[str] = field(default_factory=list)


def assess(run: Run) -> Assessment:
    steps = run.steps
    limit = next((step for step in steps if step.verdict != "ok"), None)
    ok = steps[: steps.index(limit)] if limit else steps
    capacity = ok[-1].users if ok else None
    findings: list[str] = []
    if not steps:
        return Assessment(None, None, None, ["no step was measured"])
    if limit is None:
        findings.append(
            f"every step was ok: the capacity is at least {steps[-1].users} users; "
            "run larger --users to find the limit"
        )
    elif capacity is None:
        findings.append(f"already {steps[0].users} users were {limit.verdict}: the capacity is below that")
    else:
        findings.append(
            f"capacity: {capacity} users (ok); at {limit.users} users the service was {limit.verdict}"
        )
    findings += _loadgen_findings(steps, limit)
    recommended, worker_findings = _worker_advice(run, limit or steps[-1], cpu_count(run), limit is not None)
    findings += worker_findings
    findings += _status_findings(steps)
    findings += _others_findings(steps)
    return Assessment(capacity, limit, recommended, findings)


def cpu_count(run: Run) -> int:
    count = run.machine.get("cpu_count")
    return count if isinstance(count, int) and count > 0 else 1


def _loadgen_findings(steps: list[Step], limit: Step | None) -> list[str]:
    considered = steps[: steps.index(limit) + 1] if limit else steps
    busy = next((step for step in considered if step.loadgen_cpu_percent >= BUSY_LOADGEN), None)
    if busy is None:
        return []
    return [
        f"the load generator used {busy.loadgen_cpu_percent:.0f}% of a core at {busy.users} users: from "
        "there on the figures measure Locust as much as the service; run it on another machine "
        "(--allow-host) for higher loads"
    ]


def _worker_advice(run: Run, step: Step, cores: int, limited: bool) -> tuple[int | None, list[str]]:
    """What the workers' CPU at `step` (the first not ok, else the last) says about adding workers."""
    workers = run.workers
    if workers is None:
        return None, [
            "workers unknown (the target's /health detail was not readable): pass --workers N for advice"
        ]
    if step.server_cpu_percent is None:
        return None, [
            f"the server's CPU could not be measured (it does not run on this machine): "
            f"no advice on its {workers} workers"
        ]
    per_worker = step.server_cpu_percent / workers
    machine = step.machine_cpu_percent
    seen = (
        f"at {step.users} users the {workers} workers were {per_worker:.0f}% busy each, "
        f"the machine's {cores} cores {machine:.0f}% (the load generator {step.loadgen_cpu_percent:.0f}% "
        "of one)"
    )
    if not limited:
        return workers, [f"{seen}: the workers kept up; the limit lies beyond the highest step"]
    if per_worker < BUSY_WORKER and machine >= BUSY_MACHINE:
        return workers, [
            f"{seen}: the machine had no idle CPU, and the workers got only that much of it; more workers "
            "would not help here: measure with the load generator on another machine, or on a quieter one"
        ]
    if per_worker < BUSY_WORKER:
        return workers, [
            f"{seen}: the workers were not CPU-bound, so more workers would not help; the limit is "
            "elsewhere (the database's writes, a lock, I/O, or the load generator)"
        ]
    idle_cores = int(cores * (100 - machine) / 100)
    if machine >= BUSY_MACHINE or idle_cores < 1:
        return workers, [
            f"{seen}: the workers were CPU-bound and the machine had no idle core, so more workers on "
            "this machine would not help; more cores would (or the load generator on another machine)"
        ]
    more = min(cores, workers + idle_cores)
    return more, [
        f"{seen}: the workers were CPU-bound with {idle_cores} core(s) idle, so more workers would help: "
        f"try WORKERS={more}"
    ]


BUSY_OTHERS = 20.0  # % of the machine used by processes that are neither side of the test


def _others_findings(steps: list[Step]) -> list[str]:
    measured = [(step.other_cpu_percent, step.users) for step in steps if step.other_cpu_percent is not None]
    busiest = max(measured, default=None)
    if busiest is None or busiest[0] < BUSY_OTHERS:
        return []
    return [
        f"other processes used up to {busiest[0]:.0f}% of the machine (at {busiest[1]} users): the service "
        "had less CPU than on a quiet machine, and its figures are lower than they would be there"
    ]


def _status_findings(steps: list[Step]) -> list[str]:
    limited = sum(step.statuses.get("429", 0) for step in steps)
    shed = sum(step.statuses.get("503", 0) for step in steps)
    exceptions = sum(step.exceptions for step in steps)
    findings = []
    if limited:
        findings.append(
            f"{limited} answers were 429: every simulated user comes from one address, so the target's "
            "rate limits count them as one client; raise its RATE_LIMIT_DEFAULT and RATE_LIMIT_LOGIN for the "
            "test, or the report measures the limits"
        )
    if shed:
        findings.append(
            f"{shed} answers were 503: the target refused work it could not serve in time (lastro's "
            "back-pressure: MAX_IN_FLIGHT, MAX_LOOP_LAG) or a dependency was down; see its log"
        )
    if exceptions:
        findings.append(f"the scenario's own code raised {exceptions} exceptions (not counted as requests)")
    return findings
