"""A bounded in-process cache: least recently used out first, each entry with its own expiry.

For what is costly to compute and safe to remember for a while in one worker: a verified access token
until it expires, a parsed configuration, a rendered fragment. It is per process: with several workers,
each keeps its own copy, so cache only what every worker may compute alike, or invalidate through the
broadcast (`lastro.coordination.cache.SharedCache`).

Bounded by entries (`maxsize`) and, optionally, by memory (`max_bytes`), as services size their caches:

```python
cache = LRUCache(1000, max_bytes=100 * 1024 * 1024, ttl=60)  # 1000 items, 100 MB, one minute each
```
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["LRUCache", "estimate_size"]

K = TypeVar("K")
V = TypeVar("V")

_NEVER = float("inf")
_MAX_DEPTH = 8  # deeper than this, a container counts as its own object only


def estimate_size(value: Any) -> int:
    """Bytes `value` holds, roughly: the length of bytes, else `sys.getsizeof` summed through containers.

    An estimate, not an accounting of the interpreter's memory (shared objects count once per holder).
    """
    return _size(value, _MAX_DEPTH)


def _size(value: Any, depth: int) -> int:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    size = sys.getsizeof(value)
    if depth == 0:
        return size
    if isinstance(value, dict):
        size += sum(_size(key, depth - 1) + _size(item, depth - 1) for key, item in value.items())
    elif isinstance(value, (list, tuple, set, frozenset)):
        size += sum(_size(item, depth - 1) for item in value)
    return size


class LRUCache(Generic[K, V]):
    """At most `maxsize` entries (and `max_bytes` of values); an entry lives `ttl` seconds, or until the
    `expires_at` it was set with.

    `sizeof(value)` tells an entry's bytes (`estimate_size` by default); a value larger than `max_bytes`
    is not stored. `clock` tells the time that `ttl` and `expires_at` are in: `time.monotonic` by default,
    `time.time` for expiries that come from outside (a token's `exp` claim). Meant for one event loop: its
    methods never block, and a lookup racing with an eviction from another thread is only a miss.
    """

    def __init__(
        self,
        maxsize: int,
        *,
        max_bytes: int | None = None,
        ttl: float | None = None,
        sizeof: Callable[[V], int] = estimate_size,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl}")
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._sizeof = sizeof
        self._clock = clock
        self._entries: OrderedDict[K, tuple[V, float, int]] = OrderedDict()
        self.bytes = 0  # the sizes of the entries held
        self.hits = 0
        self.misses = 0
        self.evictions = 0  # entries pushed out by the bounds (not expiries, pops or clears)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        """The live value for `key`, now the most recently used; `None` if absent or expired."""
        entry = self._entries.get(key)
        if entry is not None:
            if entry[1] > self._clock():
                with contextlib.suppress(KeyError):  # evicted meanwhile by another thread: still valid
                    self._entries.move_to_end(key)
                self.hits += 1
                return entry[0]
            self._drop(key)
        self.misses += 1
        return None

    def set(self, key: K, value: V, *, expires_at: float | None = None) -> None:
        """Remember `value` until `expires_at` (on the cache's clock), else for `ttl`, else until evicted.

        A value larger than `max_bytes` is not stored (and an older value of `key` is forgotten).
        """
        if expires_at is None:
            expires_at = self._clock() + self.ttl if self.ttl is not None else _NEVER
        size = self._sizeof(value) if self.max_bytes is not None else 0
        self._drop(key)
        if self.max_bytes is not None and size > self.max_bytes:
            return
        self._entries[key] = (value, expires_at, size)
        self.bytes += size
        while len(self._entries) > self.maxsize or (
            self.max_bytes is not None and self.bytes > self.max_bytes
        ):
            _, (_, _, gone) = self._entries.popitem(last=False)
            self.bytes -= gone
            self.evictions += 1

    def pop(self, key: K) -> V | None:
        """Forget `key`; its value if it was there and live."""
        entry = self._drop(key)
        return entry[0] if entry is not None and entry[1] > self._clock() else None

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def statistics(self) -> dict[str, Any]:
        """For `/health` and metrics: the bounds, what is held, and the counters."""
        lookups = self.hits + self.misses
        return {
            "items": len(self._entries),
            "max_items": self.maxsize,
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "hits": self.hits,
            "misses": self.misses,
            "hit_ratio": round(self.hits / lookups, 4) if lookups else None,
            "evictions": self.evictions,
        }

    def _drop(self, key: K) -> tuple[V, float, int] | None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry[2]
        return entry
