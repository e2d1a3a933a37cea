"""Rates, the sliding-window-counter arithmetic, and what a check decides.

Every store counts the same way (the sliding window counter of the `limits` library): hits in the current
fixed window, plus the previous window's hits weighted by how much of it still overlaps the sliding window.
It is exact within one window and never lets more than `amount` through in any window-sized span aligned
to a window boundary; across a boundary it weighs the previous window as if its hits were spread evenly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from lastro.settings import parse_rates

__all__ = ["Decision", "Rate", "WindowCounts", "decide", "parse"]


_UNITS = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `amount` hits per `period` seconds."""

    amount: int
    period: int

    def __str__(self) -> str:
        unit = _UNITS.get(self.period)
        return f"{self.amount}/{unit}" if unit else f"{self.amount} per {self.period} seconds"


def parse(text: str, setting: str = "RATE_LIMIT") -> tuple[Rate, ...]:
    """`"600/minute;20/second"` as rates; `off` as none. ValueError names `setting` and the form."""
    return tuple(Rate(amount, period) for amount, period in parse_rates(text, setting))


class WindowCounts(NamedTuple):  # a tuple: built on every check, where a frozen dataclass costs 10x
    """A key's counts as a store read them, after the hit when `allowed`.

    `elapsed` is how far into the current window the check was, in seconds (0 <= elapsed < period).
    """

    previous: int
    current: int
    elapsed: float


class Decision(NamedTuple):
    """The outcome of one check of one rate: `allowed`, what remains, and when to come back."""

    allowed: bool
    rate: Rate
    remaining: int
    reset_after: float  # seconds until the window ends, or (denied) until `cost` fits again

    @property
    def retry_after(self) -> int:
        """Whole seconds for the `Retry-After` header: never 0, so a client does not spin."""
        return max(1, math.ceil(self.reset_after))


def weighted(rate: Rate, counts: WindowCounts) -> int:
    """The hits that count against `rate` now: the previous window's share is rounded down, as the
    `limits` library's Redis script does, so that every store admits the same requests."""
    overlap = (rate.period - counts.elapsed) / rate.period
    return math.floor(counts.previous * overlap) + counts.current


def decide(rate: Rate, counts: WindowCounts, allowed: bool, cost: int = 1) -> Decision:
    """The decision a store reports for `counts` read after a check of `cost` that was `allowed` or not."""
    remaining = max(0, rate.amount - weighted(rate, counts))
    if allowed:
        return Decision(True, rate, remaining, rate.period - counts.elapsed)
    return Decision(False, rate, remaining, _wait(rate, counts, cost))


def _wait(rate: Rate, counts: WindowCounts, cost: int) -> float:
    """Seconds until `cost` more hits fit under `rate`, counts left as they are."""
    period, elapsed, room = rate.period, counts.elapsed, rate.amount - cost
    if cost > rate.amount:
        return float(period)
    if counts.current <= room:
        # This window's hits fit: wait until the previous window's share rounds down to what is left.
        if counts.previous <= 0:
            return 0.0
        needed = period * (1 - (room - counts.current + 1) / counts.previous)
        return max(0.0, needed - elapsed)
    # This window's hits alone are too many: they become the previous window and must slide out too.
    needed = period * (1 - (room + 1) / counts.current)
    return (period - elapsed) + max(0.0, needed)
