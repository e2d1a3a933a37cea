"""When a periodic job runs: `Every(seconds)` or `Cron("*/5 * * * *")`, as points in Unix time.

A schedule's points (its slots) depend on nothing but the schedule: `Every` counts whole periods from the
Unix epoch and `Cron` reads the expression in UTC. So every worker of every machine, whenever it started,
agrees which slot a moment belongs to, and a slot names one run (`lastro_job_runs`' unique key).

The cron parser is small and here rather than a dependency: five fields (minute, hour, day of month,
month, day of week, 0 or 7 for Sunday), each `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a
comma-separated list of those; month and day names are not read. As in Vixie cron, when both the day of
month and the day of week are restricted, a day that matches either one is taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from lastro.errors import ConfigurationError

__all__ = ["Cron", "Every", "Schedule"]


class Schedule(Protocol):
    """Points in time a job runs at."""

    @property
    def period(self) -> float:
        """The usual seconds between two points: what leases and retry delays are sized by."""

    def next_after(self, moment: float) -> float:
        """The first point strictly after `moment` (Unix time)."""


@dataclass(frozen=True)
class Every:
    """A point every `seconds`, counted from the Unix epoch: `Every(60)` runs on each minute."""

    seconds: float

    def __post_init__(self) -> None:
        if not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise ConfigurationError(
                f"a job's interval must be a positive number of seconds, not {self.seconds}"
            )

    @property
    def period(self) -> float:
        return self.seconds

    def next_after(self, moment: float) -> float:
        return (math.floor(moment / self.seconds) + 1) * self.seconds


_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_HORIZON = 5 * 366  # days searched for a match: Feb 29 on a given weekday can take years


@dataclass(frozen=True)
class Cron:
    """A point at each minute that matches a five-field cron expression, in UTC."""

    expression: str
    _fields: tuple[frozenset[int], ...] = field(init=False, repr=False, compare=False)
    _any_day: tuple[bool, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = self.expression.split()
        if len(parts) != len(_FIELDS):
            raise ConfigurationError(
                f"a cron expression has 5 fields (minute hour day month weekday), not {self.expression!r}"
            )
        fields = tuple(_parse(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True))
        weekdays = frozenset(day % 7 for day in fields[4])  # 7 is Sunday, as 0
        object.__setattr__(self, "_fields", (*fields[:4], weekdays))
        object.__setattr__(self, "_any_day", (parts[2] == "*", parts[4] == "*"))

    @property
    def period(self) -> float:
        """The shortest gap between two points in the coming days (at least a minute)."""
        first = self.next_after(0.0)
        second = self.next_after(first)
        return max(60.0, second - first)

    def next_after(self, moment: float) -> float:
        minutes, hours, days, months, weekdays = self._fields
        start = datetime.fromtimestamp(math.floor(moment / 60) * 60, UTC) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(_HORIZON):
            if day.month in months and self._day_matches(day, days, weekdays):
                for hour in sorted(hours):
                    for minute in sorted(minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate.timestamp()
            day += timedelta(days=1)
        raise ConfigurationError(f"the cron expression {self.expression!r} matches no day in five years")

    def _day_matches(self, day: datetime, days: frozenset[int], weekdays: frozenset[int]) -> bool:
        any_day_of_month, any_weekday = self._any_day
        in_month = day.day in days
        in_week = (day.isoweekday() % 7) in weekdays
        if any_day_of_month or any_weekday:
            return in_month and in_week
        return in_month or in_week


def _parse(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = _number(step_text, name) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first_text, _, last_text = span.partition("-")
            first, last = _number(first_text, name), _number(last_text, name)
        else:
            first = _number(span, name)
            last = high if step_text else first
        if not (low <= first <= last <= high) or step < 1:
            raise ConfigurationError(f"cron {name} {item!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _number(text: str, name: str) -> int:
    if not text.isdigit():
        raise ConfigurationError(f"cron {name} {text!r} is not a number")
    return int(text)
