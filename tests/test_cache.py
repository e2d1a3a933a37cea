"""`lastro.LRUCache`: bounded, least recently used out first, each entry with its own expiry."""

from __future__ import annotations

import pytest

from lastro import LRUCache
from tests.support.clock import FakeTime


def test_a_set_value_is_returned_and_counted_as_a_hit() -> None:
    """`get` returns what `set` stored, and counts a hit."""
    cache: LRUCache[str, int] = LRUCache(2)
    cache.set("a", 1)
    assert cache.get("a") == 1
    assert (cache.hits, cache.misses) == (1, 0)


def test_an_absent_key_is_none_and_counted_as_a_miss() -> None:
    """`get` of a key never set returns None and counts a miss."""
    cache: LRUCache[str, int] = LRUCache(2)
    assert cache.get("a") is None
    assert (cache.hits, cache.misses) == (0, 1)


def test_past_maxsize_the_least_recently_used_goes() -> None:
    """A read makes an entry recent: the entry neither read nor written last is evicted."""
    cache: LRUCache[str, int] = LRUCache(2)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.get("a")
    cache.set("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_setting_a_key_again_replaces_it_and_makes_it_recent() -> None:
    """A second `set` of a key overwrites its value and protects it from the next eviction."""
    cache: LRUCache[str, int] = LRUCache(2)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.set("a", 10)
    cache.set("c", 3)
    assert (cache.get("a"), cache.get("b")) == (10, None)


def test_an_entry_expires_at_its_own_time() -> None:
    """`expires_at` on the cache's clock: live before it, gone at it."""
    time = FakeTime()
    cache: LRUCache[str, int] = LRUCache(10, clock=time.clock)
    cache.set("a", 1, expires_at=time.now + 5)
    time.now += 4.9
    assert cache.get("a") == 1
    time.now += 0.1
    assert cache.get("a") is None
    assert len(cache) == 0


def test_ttl_applies_to_entries_set_without_an_expiry() -> None:
    """With `ttl`, an entry lives that many seconds from its `set`."""
    time = FakeTime()
    cache: LRUCache[str, int] = LRUCache(10, ttl=30, clock=time.clock)
    cache.set("a", 1)
    time.now += 29
    assert cache.get("a") == 1
    time.now += 1
    assert cache.get("a") is None


def test_without_ttl_an_entry_lives_until_evicted() -> None:
    """No `ttl` and no `expires_at`: the entry never expires."""
    time = FakeTime()
    cache: LRUCache[str, int] = LRUCache(1, clock=time.clock)
    cache.set("a", 1)
    time.now += 10**9
    assert cache.get("a") == 1


def test_pop_forgets_and_returns_a_live_value() -> None:
    """`pop` removes the key; it returns the value only while it was live."""
    time = FakeTime()
    cache: LRUCache[str, int] = LRUCache(10, clock=time.clock)
    cache.set("a", 1)
    cache.set("b", 2, expires_at=time.now + 1)
    time.now += 1
    assert cache.pop("a") == 1
    assert cache.pop("b") is None
    assert cache.pop("a") is None
    assert len(cache) == 0


def test_clear_empties_the_cache() -> None:
    """`clear` forgets every entry."""
    cache: LRUCache[str, int] = LRUCache(10)
    cache.set("a", 1)
    cache.clear()
    assert cache.get("a") is None


@pytest.mark.parametrize(("maxsize", "ttl"), [(0, None), (1, 0.0), (1, -1.0)])
def test_a_useless_size_or_ttl_is_refused(maxsize: int, ttl: float | None) -> None:
    """maxsize below 1 or a ttl that is not positive is a ValueError naming it."""
    with pytest.raises(ValueError, match="maxsize" if maxsize < 1 else "ttl"):
        LRUCache(maxsize, ttl=ttl)
