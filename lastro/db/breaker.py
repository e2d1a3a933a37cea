"""A circuit breaker in front of the database, so an outage answers 503 at once instead of queueing.

```
closed ──(threshold failures in a row)──▶ open ──(reset_after elapsed)──▶ half-open
  ▲                                        ▲                               │
  └──────────────(trial succeeds)──────────┴────────(trial fails)──────────┘
```

While open, `before_call()` raises `ServiceUnavailable` without touching the database. After `reset_after`
seconds one trial call is let through (half-open); its success closes the breaker, so the service recovers
by itself once the database is back. The clock is injected so tests never sleep.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections.abc import Callable

from lastro.errors import ServiceUnavailable, one_line_with_type

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self, *, threshold: int = 3, reset_after: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.reset_after = reset_after
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._held = False  # opened by a failed probe: only a successful probe closes it
        self._lock = threading.Lock()  # health checks report from worker threads
        self.last_error: str | None = None

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._held:
            return BreakerState.OPEN
        if self._clock() - self._opened_at >= self.reset_after:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def before_call(self) -> None:
        """Raise `ServiceUnavailable` while open; in half-open, let exactly one trial call through."""
        with self._lock:
            state = self.state
            if state is BreakerState.CLOSED:
                return
            if state is BreakerState.HALF_OPEN and not self._trial_running:
                self._trial_running = True
                return
            raise ServiceUnavailable(
                f"the database is unavailable ({self.last_error})",
                retry_after=self.retry_after(),
            )

    def retry_after(self) -> int:
        if self._opened_at is None:
            return 1
        remaining = self.reset_after - (self._clock() - self._opened_at)
        return max(1, math.ceil(remaining))

    def record_success(self) -> None:
        """A call reached the database: close the breaker, unless a probe holds it open."""
        with self._lock:
            if not self._held:  # a held breaker's trial flag is reset when a probe closes it
                self._close()

    def probe_succeeded(self) -> None:
        """The watchdog reached the database: close the breaker whatever opened it."""
        with self._lock:
            self._close()

    def probe_failed(self, error: BaseException) -> None:
        """The watchdog could not reach the database: open at once and hold open until a probe succeeds."""
        with self._lock:
            self._failures += 1
            self.last_error = one_line_with_type(error)
            if self._opened_at is None:
                self._opened_at = self._clock()
            self._held = True

    def _close(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_running = False
        self._held = False
        self.last_error = None

    def record_failure(self, error: BaseException) -> None:
        with self._lock:
            self._failures += 1
            self.last_error = one_line_with_type(error)
            if self._trial_running or self._failures >= self.threshold:
                self._opened_at = self._clock()
            self._trial_running = False

    def release_trial(self) -> None:
        """A trial call ended without telling anything about the database (e.g. a permanent error)."""
        with self._lock:
            self._trial_running = False

    def snapshot(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "consecutive_failures": self._failures,
            "last_error": self.last_error,
        }
