"""The plan of a run: user counts, bounded durations, and the verdict of a step from its thresholds."""

from __future__ import annotations

import pytest

from lastro.errors import ConfigurationError
from lastro.loadtest.plan import MAX_TOTAL, Plan, Thresholds, parse_users


def test_user_counts_are_read_in_order() -> None:
    """`10,30,50,100,200` is five steps in that order."""
    assert parse_users("10,30,50,100,200") == (10, 30, 50, 100, 200)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("10,x", "separated by commas"), ("30,10", "must increase"), ("0,5", "between 1 and"), ("", "commas")],
)
def test_bad_user_counts_are_refused_with_the_form(text: str, fragment: str) -> None:
    """Counts that are not positive increasing integers are refused, naming the expected form."""
    with pytest.raises(ConfigurationError, match=fragment):
        parse_users(text)


def test_a_step_is_a_quarter_warm_up_and_the_rest_measured() -> None:
    """A 20 s step warms up 5 s and measures 15; a long step warms up at most 10 s."""
    plan = Plan((10, 20), 20.0, Thresholds())
    assert (plan.warm_up, plan.window) == (5.0, 15.0)
    assert Plan((10,), 120.0, Thresholds()).warm_up == 10.0


def test_the_total_is_every_step_and_a_margin_to_stop() -> None:
    """Five steps of 30 s last 150 s, plus the few seconds the users take to stop."""
    assert 150 < Plan((10, 30, 50, 100, 200), 30.0, Thresholds()).total_seconds <= 160


@pytest.mark.parametrize(("users", "seconds"), [((10,), 1.0), ((10,), 601.0), (tuple(range(1, 21)), 200.0)])
def test_absurd_durations_are_refused(users: tuple[int, ...], seconds: float) -> None:
    """Steps under 2 s or over 10 minutes, or a run over an hour in all, are refused before starting."""
    with pytest.raises(ConfigurationError, match="--step-duration"):
        Plan(users, seconds, Thresholds())
    assert MAX_TOTAL == 3600


def test_new_users_arrive_within_half_the_warm_up() -> None:
    """From 10 to 30 users with a 4 s warm-up: 20 users in 2 s, 10 a second."""
    plan = Plan((10, 30), 16.0, Thresholds())
    assert plan.spawn_rate(1) == 10.0


@pytest.mark.parametrize(
    ("p95", "p99", "errors", "verdict"),
    [
        (120, 400, 0.0, "ok"),
        (600, 900, 0.0, "degraded"),
        (300, 1500, 0.5, "degraded"),
        (1200, 1500, 0.0, "overloaded"),
        (50, 80, 5.0, "overloaded"),
    ],
)
def test_a_step_is_ok_degraded_or_overloaded(p95: float, p99: float, errors: float, verdict: str) -> None:
    """Within p95 500 / p99 1000 ms and 1% errors: ok; past a latency: degraded; past the errors or twice
    the p95: overloaded."""
    assert Thresholds(500, 1000, 1.0).verdict(p95, p99, errors) == verdict


def test_thresholds_must_be_positive() -> None:
    """A threshold of 0 ms or an error rate over 100% is refused, naming the option."""
    with pytest.raises(ConfigurationError, match="--p95-ok"):
        Thresholds(p95_ms=0)
    with pytest.raises(ConfigurationError, match="--max-error-rate"):
        Thresholds(max_error_percent=150)
