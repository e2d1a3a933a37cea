"""`LogThrottle`: one log line per kind of failure per interval, however many requests meet it.

A fault that every request meets (a full disk, say) would otherwise write a line per request, and a
traceback per line fills the very disk that failed within minutes (benchmarks/RESULTS.md, "A fault every
request meets: log volume"). The first occurrence of a kind is logged at once; later ones within the
interval are only counted, and the next line after the interval carries that count.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["LogThrottle"]


class LogThrottle:
    def __init__(self, interval: float = 60.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def admit(self, kind: str) -> int | None:
        """None when this occurrence of `kind` should not be logged; else how many were not since the last."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return None
        self._last[kind] = now
        return self._suppressed.pop(kind, 0)
