"""The sliding-window-counter arithmetic every store shares."""

from __future__ import annotations

import pytest

from lastro.ratelimit.window import Rate, WindowCounts, decide, parse, weighted


def test_rates_parse_from_the_settings_form() -> None:
    """`600/minute;10 per 2 seconds` is two rates; `off` is none."""
    assert parse("600/minute;10 per 2 seconds") == (Rate(600, 60), Rate(10, 2))
    assert parse("off") == ()


def test_a_malformed_rate_names_its_setting_and_the_form() -> None:
    """A rate that is not N/period is refused with the setting's name and an example."""
    with pytest.raises(ValueError, match=r"RATE_LIMIT_LOGIN must be N/second.*e\.g\. 600/minute"):
        parse("twenty a minute", "RATE_LIMIT_LOGIN")


def test_the_previous_window_weighs_what_still_overlaps() -> None:
    """Halfway through a window, half of the previous window's hits still count."""
    assert weighted(Rate(10, 60), WindowCounts(previous=8, current=3, elapsed=30)) == 7


def test_an_allowed_hit_reports_what_remains_until_the_window_ends() -> None:
    """After 4 of 10 hits, 6 remain and the quota resets when the window ends."""
    decision = decide(Rate(10, 60), WindowCounts(0, 4, 15), allowed=True)
    assert (decision.allowed, decision.remaining, decision.reset_after) == (True, 6, 45)


def test_a_full_window_waits_for_the_next_one() -> None:
    """15 hits of 10 at second 40: the next fits once the window ends and a third of it has slid out."""
    decision = decide(Rate(10, 60), WindowCounts(0, 15, 40), allowed=False)
    assert decision.reset_after == pytest.approx(20 + 60 * (1 - 10 / 15))
    assert decision.retry_after == 40


def test_a_full_previous_window_waits_for_enough_of_it_to_slide_out() -> None:
    """Previous 20, current 0, at second 0: one more of 10 fits once half the previous has slid out."""
    decision = decide(Rate(10, 60), WindowCounts(20, 0, 0), allowed=False)
    assert decision.reset_after == pytest.approx(30)


def test_the_previous_share_rounds_down_as_the_redis_script_does() -> None:
    """9.5 hits' worth of the previous window count as 9: one more of 10 passes."""
    assert weighted(Rate(10, 60), WindowCounts(previous=19, current=0, elapsed=30)) == 9


def test_retry_after_is_never_zero() -> None:
    """A refusal that could pass in a fraction of a second still says 1 s."""
    decision = decide(Rate(10, 60), WindowCounts(10, 0, 5.9), allowed=False)
    assert decision.retry_after == 1


def test_a_cost_over_the_whole_quota_waits_a_period() -> None:
    """A cost larger than the quota can never fit: the wait is one period, not a negative one."""
    decision = decide(Rate(3, 60), WindowCounts(0, 0, 0), allowed=False, cost=5)
    assert decision.reset_after == 60


def test_a_rate_reads_as_it_is_written() -> None:
    """Messages quote a rate in the settings' own form."""
    assert [str(rate) for rate in parse("60/minute;5 per 10 seconds")] == ["60/minute", "5 per 10 seconds"]
