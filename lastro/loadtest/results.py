"""What a run measured: one `Step` per user count, and the `Run` around them (target, plan, machine)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lastro.loadtest.plan import Plan, Verdict

__all__ = ["Run", "Step"]


@dataclass(frozen=True)
class Step:
    """One user count's measured window (the warm-up before it is not counted)."""

    users: int
    seconds: float
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    verdict: Verdict
    # Answers that were not 2xx/3xx by status ("0": no answer: refused, reset, timed out).
    statuses: dict[str, int] = field(default_factory=dict)
    # The load generator's own process, in % of one core; the whole machine's CPUs, in % of all.
    loadgen_cpu_percent: float = 0.0
    machine_cpu_percent: float = 0.0
    # The target's processes (on this machine only), in % of one core: 200 is two cores busy.
    server_cpu_percent: float | None = None
    cpu_count: int = 1
    exceptions: int = 0  # raised by the scenario's own code, not answers of the target
    # Per request name (`GET /api/orders/{id}`): requests, failures, p50_ms, p95_ms, p99_ms.
    endpoints: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def other_cpu_percent(self) -> float | None:
        """% of all the machine's cores used by neither the load generator nor the target (when measured)."""
        if self.server_cpu_percent is None:
            return None
        cores = self.loadgen_cpu_percent + self.server_cpu_percent
        return max(0.0, self.machine_cpu_percent - cores / self.cpu_count) if self.cpu_count else None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_percent(self) -> float:
        # A window without a single answer is no service at all.
        return 100 * self.failures / self.requests if self.requests else 100.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rps": round(self.rps, 1), "error_percent": round(self.error_percent, 2)}


@dataclass
class Run:
    target: str
    scenario: str
    plan: Plan
    machine: dict[str, Any]
    workers: int | None = None  # from the target's /health detail or --workers
    steps: list[Step] = field(default_factory=list)
    started_at: str = ""
    interrupted: str | None = None  # why the run stopped before its last step
    cancelled: bool = False  # by the person running it (Ctrl-C)
