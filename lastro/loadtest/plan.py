"""What a run will do, checked before anything starts: the user counts, each step's time, the thresholds.

Every run is bounded: a step lasts `step_duration` seconds (a quarter of it, at most `MAX_WARM_UP`, is
warm-up whose requests are not counted), and the whole run at most `MAX_TOTAL` seconds.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any, Literal

from lastro.errors import ConfigurationError

__all__ = [
    "DEFAULT_USERS",
    "MAX_TOTAL",
    "MAX_USERS",
    "Plan",
    "Thresholds",
    "Verdict",
    "parse_users",
]

Verdict = Literal["ok", "degraded", "overloaded"]

DEFAULT_USERS = "10,30,50,100,200"
MAX_USERS = 5000  # one Locust process does not simulate more than a few thousand users usefully
MAX_STEPS = 20
MIN_STEP = 2.0
MAX_STEP = 600.0
MAX_WARM_UP = 10.0
MAX_TOTAL = 3600.0  # an hour: past that, a run is a soak test, not a capacity report
# Seconds after the last step for the users to stop and the report to be written.
SHUTDOWN_ALLOWANCE = 5.0


def parse_users(text: str) -> tuple[int, ...]:
    """`10,30,50` as (10, 30, 50): positive, increasing, at most MAX_STEPS counts of at most MAX_USERS."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigurationError(
            f"--users must be counts separated by commas, e.g. 10,30,50; not {text!r}"
        ) from None
    if not 1 <= len(counts) <= MAX_STEPS:
        raise ConfigurationError(f"--users takes 1 to {MAX_STEPS} counts, not {len(counts)}")
    if any(not 1 <= count <= MAX_USERS for count in counts):
        raise ConfigurationError(f"--users counts must be between 1 and {MAX_USERS}: {text!r}")
    if any(later <= earlier for earlier, later in itertools.pairwise(counts)):
        raise ConfigurationError(f"--users counts must increase, e.g. 10,30,50; not {text!r}")
    return counts


@dataclass(frozen=True)
class Thresholds:
    """A step is ok within all three; overloaded past the error rate or past twice the p95."""

    p95_ms: float = 500.0
    p99_ms: float = 1000.0
    max_error_percent: float = 1.0

    def __post_init__(self) -> None:
        if self.p95_ms <= 0 or self.p99_ms <= 0:
            raise ConfigurationError("--p95-ok and --p99-ok must be milliseconds above 0")
        if not 0 <= self.max_error_percent <= 100:
            raise ConfigurationError("--max-error-rate must be a percentage between 0 and 100")

    def verdict(self, p95_ms: float, p99_ms: float, error_percent: float) -> Verdict:
        if error_percent > self.max_error_percent or p95_ms > 2 * self.p95_ms:
            return "overloaded"
        if p95_ms > self.p95_ms or p99_ms > self.p99_ms:
            return "degraded"
        return "ok"


@dataclass(frozen=True)
class Plan:
    users: tuple[int, ...]
    step_duration: float
    thresholds: Thresholds

    def __post_init__(self) -> None:
        if not MIN_STEP <= self.step_duration <= MAX_STEP:
            raise ConfigurationError(
                f"--step-duration must be between {MIN_STEP:g} and {MAX_STEP:g} seconds, "
                f"not {self.step_duration:g}"
            )
        if self.total_seconds > MAX_TOTAL:
            raise ConfigurationError(
                f"the run would last {self.total_seconds:.0f} s ({len(self.users)} steps of "
                f"{self.step_duration:g} s), more than {MAX_TOTAL:.0f}: "
                "fewer --users or a shorter --step-duration"
            )

    @property
    def warm_up(self) -> float:
        return min(self.step_duration / 4, MAX_WARM_UP)

    @property
    def window(self) -> float:
        return self.step_duration - self.warm_up

    @property
    def total_seconds(self) -> float:
        return len(self.users) * self.step_duration + SHUTDOWN_ALLOWANCE

    def spawn_rate(self, step: int) -> float:
        """Users a second that reach this step's count within half its warm-up."""
        added = self.users[step] - (self.users[step - 1] if step else 0)
        return max(1.0, added / (self.warm_up / 2))

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": list(self.users),
            "step_duration_s": self.step_duration,
            "warm_up_s": self.warm_up,
            "window_s": self.window,
            "total_s": self.total_seconds,
            "thresholds": asdict(self.thresholds),
        }
