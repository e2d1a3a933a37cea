"""`Every` and `Cron`: slots every worker agrees on, whenever it started."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lastro.coordination.schedule import Cron, Every
from lastro.errors import ConfigurationError


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_every_counts_whole_periods_from_the_epoch() -> None:
    """Two workers started apart agree on the next slot: a multiple of the period."""
    assert Every(10).next_after(1003.2) == 1010.0
    assert Every(10).next_after(1007.9) == 1010.0


def test_every_on_a_slot_gives_the_next_one() -> None:
    """The next slot is strictly after the moment given."""
    assert Every(10).next_after(1010.0) == 1020.0


@pytest.mark.parametrize("seconds", [0, -1, float("inf"), float("nan")])
def test_every_refuses_a_period_that_is_not_positive(seconds: float) -> None:
    """A zero, negative or infinite interval is a configuration error."""
    with pytest.raises(ConfigurationError):
        Every(seconds)


def test_cron_steps_of_minutes() -> None:
    """`*/5 * * * *` runs on each fifth minute, in UTC."""
    assert Cron("*/5 * * * *").next_after(at("2026-12-05 05:37:12")) == at("2026-12-05 05:40:00")


def test_cron_on_a_slot_gives_the_next_one() -> None:
    """The next point is strictly after the moment given."""
    assert Cron("*/5 * * * *").next_after(at("2026-12-05 05:40:00")) == at("2026-12-05 05:45:00")


def test_cron_lists_and_ranges_cross_days_and_months() -> None:
    """`30 2,14 1 * *`: half past two and fourteen on the first of each month."""
    cron = Cron("30 2,14 1 * *")
    assert cron.next_after(at("2026-12-01 14:30:00")) == at("2027-01-01 02:30:00")


def test_cron_day_of_month_or_day_of_week_when_both_are_given() -> None:
    """As in Vixie cron, `0 0 13 * 5` fires on the 13th and on every Friday."""
    cron = Cron("0 0 13 * 5")
    assert cron.next_after(at("2026-12-05 00:00:00")) == at("2026-12-11 00:00:00")  # a Friday
    assert cron.next_after(at("2026-12-11 00:00:00")) == at("2026-12-13 00:00:00")  # the 13th, a Sunday


def test_cron_sunday_is_zero_or_seven() -> None:
    """`0 9 * * 7` and `0 9 * * 0` are both Sundays."""
    sunday = at("2026-12-06 09:00:00")
    assert Cron("0 9 * * 7").next_after(at("2026-12-05 09:00:00")) == sunday
    assert Cron("0 9 * * 0").next_after(at("2026-12-05 09:00:00")) == sunday


def test_cron_leap_day() -> None:
    """February 29th is found years ahead."""
    assert Cron("0 0 29 2 *").next_after(at("2026-12-05 00:00:00")) == at("2028-02-29 00:00:00")


def test_cron_period_is_the_gap_between_points() -> None:
    """A job every five minutes has a five-minute period, for its lease and backoff."""
    assert Cron("*/5 * * * *").period == 300.0
    assert Cron("0 * * * *").period == 3600.0


@pytest.mark.parametrize(
    "expression",
    ["* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "a * * * *", "5-1 * * * *", "0 0 31 2 *"],
)
def test_cron_refuses_garbage(expression: str) -> None:
    """A malformed or impossible expression is a configuration error, never a hang."""
    with pytest.raises(ConfigurationError):
        Cron(expression).next_after(0.0)
