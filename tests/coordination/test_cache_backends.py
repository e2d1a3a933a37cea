"""`SharedCache` on the real event backends (SQLite, Redis, PostgreSQL): two workers, one backend each."""

from __future__ import annotations

import pytest

from lastro.coordination.cache import SharedCache
from tests.coordination.conftest import Workers

pytestmark = pytest.mark.anyio

ROUNDS = 30


async def test_a_lookup_right_after_an_invalidation_elsewhere_loads_the_new_value(worker: Workers) -> None:
    """Round after round, worker B's first lookup after A's `invalidate` returned gets A's new value."""
    async with worker() as one, worker() as two:
        caches = [
            SharedCache[int]("orders", broadcast, max_items=10, catch_up_timeout=10)
            for broadcast in (one, two)
        ]
        current = 0

        async def load() -> int:
            return current

        for _ in range(ROUNDS):
            assert await caches[1].get_or_load("k", load) == current  # cached on B
            current += 1
            await caches[0].invalidate("k")
            assert await caches[1].get_or_load("k", load) == current
        assert caches[1].statistics()["hits"] == ROUNDS - 1
        for cache in caches:
            await cache.close()
