"""LogThrottle: the first occurrence of a kind is logged, the rest counted until the interval has passed."""

from __future__ import annotations

from lastro.observability.throttle import LogThrottle
from tests.support.clock import FakeTime


def test_the_first_occurrence_is_admitted() -> None:
    """A kind never seen is logged, with nothing left out before it."""
    assert LogThrottle(60.0, clock=FakeTime().clock).admit("disk full") == 0


def test_repeats_within_the_interval_are_not_admitted() -> None:
    """The same kind again within the interval is only counted."""
    time = FakeTime()
    throttle = LogThrottle(60.0, clock=time.clock)
    throttle.admit("disk full")
    time.now += 59
    assert throttle.admit("disk full") is None


def test_after_the_interval_the_next_line_carries_the_count() -> None:
    """Past the interval the kind is logged again, with how many were not."""
    time = FakeTime()
    throttle = LogThrottle(60.0, clock=time.clock)
    throttle.admit("disk full")
    for _ in range(5):
        throttle.admit("disk full")
    time.now += 60
    assert throttle.admit("disk full") == 5
    time.now += 60
    assert throttle.admit("disk full") == 0


def test_kinds_are_throttled_apart() -> None:
    """A second kind is logged even while the first is being held back."""
    throttle = LogThrottle(60.0, clock=FakeTime().clock)
    throttle.admit("database full")
    assert throttle.admit("files full") == 0
