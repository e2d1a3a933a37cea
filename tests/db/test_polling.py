"""IdleBackoff: the base wait while something changes, growing waits while it does not, up to the cap."""

from __future__ import annotations

import pytest

from lastro.db.polling import IdleBackoff


def test_a_change_keeps_the_base_wait() -> None:
    """Each look that finds a change is followed by the base wait."""
    backoff = IdleBackoff(base=0.01, cap=0.1)
    assert [backoff.after(True) for _ in range(3)] == [0.01, 0.01, 0.01]


def test_unchanged_looks_double_the_wait_up_to_the_cap() -> None:
    """An idle spell stretches the wait by the factor each look, never past the cap."""
    backoff = IdleBackoff(base=0.01, cap=0.1)
    assert [backoff.after(False) for _ in range(5)] == [0.02, 0.04, 0.08, 0.1, 0.1]


def test_the_first_change_after_an_idle_spell_goes_back_to_the_base() -> None:
    """Once something changes again, the next look comes after the base wait."""
    backoff = IdleBackoff(base=0.05, cap=1.0)
    for _ in range(10):
        backoff.after(False)
    assert (backoff.after(True), backoff.after(False)) == (0.05, 0.1)


def test_a_cap_below_the_base_is_the_base() -> None:
    """A base interval set above the idle cap (a slow EVENTS_POLL_INTERVAL) is never shortened or grown."""
    backoff = IdleBackoff(base=0.5, cap=0.1)
    assert [backoff.after(False) for _ in range(2)] == [0.5, 0.5]


def test_a_zero_base_never_waits() -> None:
    """A base of 0 (a test's watch with nothing to wait for) stays at 0."""
    backoff = IdleBackoff(base=0, cap=1.0)
    assert [backoff.after(False) for _ in range(3)] == [0, 0, 0]


@pytest.mark.parametrize(("base", "factor"), [(-0.1, 2.0), (0.01, 0.5)])
def test_a_negative_base_or_a_shrinking_factor_is_refused(base: float, factor: float) -> None:
    """A wait below zero, or one that would shrink while idle, is a programming error."""
    with pytest.raises(ValueError, match="IdleBackoff needs"):
        IdleBackoff(base=base, cap=1.0, factor=factor)
