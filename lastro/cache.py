"""A bounded in-process cache: least recently used out first, each entry with its own expiry.

For what is costly to compute and safe to remember for a while in one worker: a verified access token
until it expires, a parsed configuration, a rendered fragment. It is per process: with several workers,
each keeps its own copy, so cache only what every worker may compute alike.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["LRUCache"]

K = TypeVar("K")
V = TypeVar("V")

_NEVER = float("inf")


class LRUCache(Generic[K, V]):
    """At most `maxsize` entries; an entry lives `ttl` seconds, or until the `expires_at` it was set with.

    `clock` tells the time that `ttl` and `expires_at` are in: `time.monotonic` by default, `time.time`
    for expiries that come from outside (a token's `exp` claim). Meant for one event loop: its methods
    never block, and a lookup racing with an eviction from another thread is only a miss.
    """

    def __init__(
        self, maxsize: int, *, ttl: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl}")
        self.maxsize = maxsize
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self.hits = 0
        self.misses = 0

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
            self._entries.pop(key, None)
        self.misses += 1
        return None

    def set(self, key: K, value: V, *, expires_at: float | None = None) -> None:
        """Remember `value` until `expires_at` (on the cache's clock), else for `ttl`, else until evicted."""
        if expires_at is None:
            expires_at = self._clock() + self.ttl if self.ttl is not None else _NEVER
        self._entries[key] = (value, expires_at)
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)

    def pop(self, key: K) -> V | None:
        """Forget `key`; its value if it was there and live."""
        entry = self._entries.pop(key, None)
        return entry[0] if entry is not None and entry[1] > self._clock() else None

    def clear(self) -> None:
        self._entries.clear()
