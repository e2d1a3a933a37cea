"""`lastro.LRUCache`: bounded, least recently used out first, each entry with its own expiry."""

from __future__ import annotations

import pytest

from lastro import LRUCache
from lastro.cache import estimate_size
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


@pytest.mark.parametrize(
    ("maxsize", "max_bytes", "ttl", "named"),
    [(0, None, None, "maxsize"), (1, 0, None, "max_bytes"), (1, None, 0.0, "ttl"), (1, None, -1.0, "ttl")],
)
def test_a_useless_bound_or_ttl_is_refused(
    maxsize: int, max_bytes: int | None, ttl: float | None, named: str
) -> None:
    """maxsize or max_bytes below 1, or a ttl that is not positive, is a ValueError naming it."""
    with pytest.raises(ValueError, match=named):
        LRUCache(maxsize, max_bytes=max_bytes, ttl=ttl)


def test_past_max_bytes_the_least_recently_used_go_until_under() -> None:
    """Entries are evicted oldest-used first until the sizes held fit in `max_bytes`."""
    cache: LRUCache[str, bytes] = LRUCache(100, max_bytes=10)
    cache.set("a", b"1234")
    cache.set("b", b"1234")
    cache.get("a")
    cache.set("c", b"12345678")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, None, b"12345678")
    assert cache.bytes == 8
    assert cache.evictions == 2


def test_both_bounds_hold_at_once() -> None:
    """Whichever bound is crossed first evicts: the count here, the bytes below."""
    cache: LRUCache[str, bytes] = LRUCache(2, max_bytes=100)
    for key in "abc":
        cache.set(key, b"x")
    assert (len(cache), cache.bytes, cache.evictions) == (2, 2, 1)
    cache.set("d", b"x" * 100)
    assert (len(cache), cache.bytes) == (1, 100)


def test_a_value_larger_than_max_bytes_is_not_stored() -> None:
    """Too large for the whole cache: not stored, nothing evicted for it, an older value of the key gone."""
    cache: LRUCache[str, bytes] = LRUCache(10, max_bytes=4)
    cache.set("a", b"12")
    cache.set("b", b"12")
    cache.set("b", b"12345")
    assert (cache.get("a"), cache.get("b")) == (b"12", None)
    assert (cache.bytes, cache.evictions) == (2, 0)


def test_sizeof_is_injectable() -> None:
    """`sizeof` decides an entry's bytes: here each value weighs its own number."""
    cache: LRUCache[str, int] = LRUCache(10, max_bytes=10, sizeof=lambda value: value)
    cache.set("a", 6)
    cache.set("b", 5)
    assert (cache.get("a"), cache.get("b"), cache.bytes) == (None, 5, 5)


def test_replacing_pop_and_clear_keep_the_byte_count_true() -> None:
    """The bytes held follow every way an entry leaves: replaced, popped, expired, cleared."""
    time = FakeTime()
    cache: LRUCache[str, bytes] = LRUCache(10, max_bytes=100, clock=time.clock)
    cache.set("a", b"1234")
    cache.set("a", b"12")
    cache.set("b", b"123")
    cache.set("c", b"1", expires_at=time.now + 1)
    assert cache.bytes == 6
    cache.pop("b")
    time.now += 1
    cache.get("c")
    assert cache.bytes == 2
    cache.clear()
    assert cache.bytes == 0


def test_statistics_show_bounds_contents_and_counters() -> None:
    """`statistics()` has items, bytes, both bounds, hits, misses, the hit ratio and evictions."""
    cache: LRUCache[str, bytes] = LRUCache(1, max_bytes=50)
    cache.set("a", b"123")
    cache.get("a")
    cache.get("z")
    cache.set("b", b"1")
    assert cache.statistics() == {
        "items": 1,
        "max_items": 1,
        "bytes": 1,
        "max_bytes": 50,
        "hits": 1,
        "misses": 1,
        "hit_ratio": 0.5,
        "evictions": 1,
    }


def test_the_default_size_counts_bytes_and_what_containers_hold() -> None:
    """Bytes weigh their length; a dict weighs more than its empty self by what it holds."""
    assert estimate_size(b"x" * 1000) == 1000
    small = estimate_size({"body": "x"})
    assert estimate_size({"body": "x" * 10_000}) >= small + 9_999
    assert estimate_size([b"x" * 100, b"y" * 100]) >= 200
