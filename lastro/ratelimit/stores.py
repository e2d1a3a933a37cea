"""The seam every rate-limit store implements, and the one kept in a worker's memory.

A store checks several rates for several keys at once and either counts the hit against all of them or
against none: a request refused by one rate does not use up another.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from lastro.ratelimit.window import Decision, Rate, WindowCounts, decide, weighted

__all__ = ["Check", "LocalStore", "Store", "StoreUnavailable"]

Check = tuple[str, Rate]  # (key, rate): one rate of one client


class StoreUnavailable(Exception):
    """The store could not answer in time (Redis down, a timeout); the limiter falls back or refuses."""


class Store(Protocol):
    """Where the counts live: one worker's memory, a file shared by a machine's workers, or Redis."""

    name: str

    async def hit(self, checks: Sequence[Check], cost: int = 1) -> list[Decision]:
        """Count `cost` against every check if all allow it, else against none; a decision per check.

        Raises `StoreUnavailable` when the store cannot answer.
        """
        ...

    async def ping(self) -> None:
        """Return once the store answers; raise `StoreUnavailable` when it does not."""
        ...

    async def close(self) -> None: ...


class LocalStore:
    """Counts in this process only: exact for one worker, N times the limit with N workers.

    The fallback when the shared store is unreachable, and what tests use. Bounded: at most `max_keys`
    keys, the least recently refreshed dropped first.
    """

    name = "memory"

    def __init__(self, *, max_keys: int = 65536, clock: Callable[[], float] = time.time) -> None:
        self._windows: dict[tuple[str, int], list[float]] = {}  # (key, period) -> [start, previous, current]
        self._max_keys = max_keys
        self._clock = clock

    async def hit(self, checks: Sequence[Check], cost: int = 1) -> list[Decision]:
        return self.hit_now(checks, cost)

    def hit_now(self, checks: Sequence[Check], cost: int = 1) -> list[Decision]:
        now = self._clock()
        counts = [self._counts(key, rate, now) for key, rate in checks]
        allowed = True
        for (_, rate), window in zip(checks, counts, strict=True):
            if weighted(rate, window) + cost > rate.amount:
                allowed = False
        decisions = []
        for (key, rate), window in zip(checks, counts, strict=True):
            if allowed:
                self._windows[key, rate.period][2] += cost
                window = WindowCounts(window.previous, window.current + cost, window.elapsed)
            decisions.append(decide(rate, window, allowed, cost))
        return decisions

    def _counts(self, key: str, rate: Rate, now: float) -> WindowCounts:
        start = now - now % rate.period
        window = self._windows.pop((key, rate.period), None)  # re-inserted last: the order is recency
        if window is None or window[0] < start - rate.period:
            window = [start, 0, 0]
        elif window[0] < start:
            window = [start, window[2], 0]
        self._windows[key, rate.period] = window
        if len(self._windows) > self._max_keys:
            del self._windows[next(iter(self._windows))]
        return WindowCounts(int(window[1]), int(window[2]), now - start)

    async def ping(self) -> None:
        pass

    async def close(self) -> None:
        self._windows.clear()
