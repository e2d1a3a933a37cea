"""`LocalStore`: one worker's counts, the fallback when the shared store is gone."""

from __future__ import annotations

from lastro.ratelimit.stores import LocalStore
from lastro.ratelimit.window import Rate
from tests.support.clock import FakeTime

RATE = Rate(3, 60)


def allowed(store: LocalStore, *checks: tuple[str, Rate]) -> bool:
    return all(decision.allowed for decision in store.hit_now(list(checks)))


def test_a_key_gets_its_quota_and_no_more() -> None:
    """Three hits of a 3/minute rate pass, the fourth is refused."""
    store = LocalStore(clock=FakeTime(6000).clock)
    assert [allowed(store, ("a", RATE)) for _ in range(4)] == [True, True, True, False]


def test_keys_are_counted_apart() -> None:
    """One client's hits do not use up another's quota."""
    store = LocalStore(clock=FakeTime(6000).clock)
    for _ in range(3):
        store.hit_now([("a", RATE)])
    assert allowed(store, ("b", RATE))


def test_a_refused_check_counts_against_no_rate() -> None:
    """When one rate refuses, the hit is not counted against the others."""
    store = LocalStore(clock=FakeTime(6000).clock)
    tight, loose = Rate(1, 1), Rate(10, 60)
    assert allowed(store, ("a", tight), ("a", loose))
    assert not allowed(store, ("a", tight), ("a", loose))
    assert store.hit_now([("a", loose)])[0].remaining == 8


def test_the_quota_comes_back_as_windows_pass() -> None:
    """Two windows after the last hit, the whole quota is back."""
    time = FakeTime(6000)
    store = LocalStore(clock=time.clock)
    for _ in range(3):
        store.hit_now([("a", RATE)])
    time.now += 120
    assert store.hit_now([("a", RATE)])[0].remaining == 2


def test_keys_beyond_the_bound_drop_the_oldest() -> None:
    """With more keys than `max_keys`, the least recently used one is forgotten."""
    store = LocalStore(max_keys=2, clock=FakeTime(6000).clock)
    for key in ("a", "b", "c"):
        store.hit_now([(key, Rate(1, 60))])
    assert allowed(store, ("a", Rate(1, 60)))
    assert not allowed(store, ("c", Rate(1, 60)))
