"""`SharedCache`: a cache per worker whose invalidations reach every worker through the broadcast.

Two `Broadcast`s on one `MemoryLog` are two workers sharing one backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from lastro.coordination.cache import SharedCache, open_cache
from lastro.coordination.events import Broadcast
from lastro.errors import ConfigurationError
from lastro.settings import Settings
from tests.coordination.conftest import wait_until
from tests.support.events import MemoryLog, MemoryTransport

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def worker(log: MemoryLog, **options: float) -> AsyncIterator[SharedCache[str]]:
    broadcast = Broadcast(MemoryTransport(log))
    task = asyncio.create_task(broadcast.run())
    cache: SharedCache[str] = SharedCache("orders", broadcast, max_items=100, **options)  # type: ignore[arg-type]
    try:
        yield cache
    finally:
        await cache.close()
        task.cancel()
        await broadcast.close()


class Source:
    """The data behind the cache: a version per key, and how many loads it answered."""

    def __init__(self) -> None:
        self.version = 1
        self.loads = 0

    async def load(self) -> str:
        self.loads += 1
        return f"v{self.version}"


async def test_a_second_lookup_is_a_hit_without_loading() -> None:
    """The loader runs once; the second lookup of the key is answered from the worker's cache."""
    source = Source()
    async with worker(MemoryLog()) as cache:
        assert await cache.get_or_load("k", source.load) == "v1"
        assert await cache.get_or_load("k", source.load) == "v1"
    assert source.loads == 1
    assert (cache.local.hits, cache.local.misses) == (1, 1)


async def test_an_invalidation_on_one_worker_is_seen_by_the_next_lookup_on_another() -> None:
    """Right after `invalidate` returns on worker A, worker B's next lookup loads the new value."""
    log, source = MemoryLog(), Source()
    async with worker(log) as one, worker(log) as two:
        assert await one.get_or_load("k", source.load) == "v1"
        assert await two.get_or_load("k", source.load) == "v1"
        source.version = 2
        await one.invalidate("k")
        assert await two.get_or_load("k", source.load) == "v2"  # no wait: the lookup catches up itself
        assert await one.get_or_load("k", source.load) == "v2"


async def test_other_keys_survive_an_invalidation() -> None:
    """Invalidating one key leaves the others cached on every worker."""
    log, source = MemoryLog(), Source()
    async with worker(log) as one, worker(log) as two:
        await two.get_or_load("other", source.load)
        await one.invalidate("k")
        await two.get_or_load("other", source.load)
    assert source.loads == 1


async def test_a_load_racing_with_an_invalidation_is_returned_but_not_stored() -> None:
    """A value loaded before a change and finished after its invalidation is not kept for the next lookup."""
    log, source = MemoryLog(), Source()
    loading, change_done = asyncio.Event(), asyncio.Event()

    async def slow_old_load() -> str:
        value = await source.load()  # reads the old version...
        loading.set()
        await change_done.wait()  # ...and finishes after the change was invalidated everywhere
        return value

    async with worker(log) as one, worker(log) as two:
        racing = asyncio.create_task(two.get_or_load("k", slow_old_load))
        await loading.wait()
        source.version = 2
        await one.invalidate("k")
        await two._broadcast.catch_up()
        change_done.set()
        assert await racing == "v1"
        assert await two.get_or_load("k", source.load) == "v2"


async def test_a_loss_of_events_forgets_everything() -> None:
    """When the broadcast lost events it cannot replay, every worker drops all it cached."""
    log, source = MemoryLog(), Source()
    async with worker(log) as cache:
        await cache.get_or_load("a", source.load)
        await cache.get_or_load("b", source.load)
        log.fail()
        log.append("elsewhere", {})  # the next delivery reports the loss first
        await cache._broadcast.catch_up()
        assert len(cache.local) == 0
        await cache.get_or_load("a", source.load)
    assert source.loads == 3


async def test_a_broadcast_that_cannot_catch_up_bypasses_the_cache() -> None:
    """A lookup whose catch-up fails loads, and stores nothing: a pending invalidation may be missed."""
    source = Source()
    async with worker(MemoryLog(), catch_up_timeout=0.05) as cache:
        await cache.get_or_load("k", source.load)

        async def stuck() -> None:
            await asyncio.Event().wait()

        cache._broadcast.catch_up = stuck  # type: ignore[method-assign]
        source.version = 2
        assert await cache.get_or_load("k", source.load) == "v2"
        assert cache.statistics()["bypassed"] == 1


async def test_the_memory_bound_holds() -> None:
    """`max_bytes` bounds the worker's copy: the least recently used go first."""
    source = Source()
    async with worker(MemoryLog(), max_bytes=100) as cache:
        cache.local._sizeof = lambda value: 40
        for key in "abc":
            await cache.get_or_load(key, source.load)
        statistics = cache.statistics()
    assert (statistics["items"], statistics["bytes"], statistics["evictions"]) == (2, 80, 1)


async def test_statistics_name_the_backend_and_count_invalidations() -> None:
    """`statistics()` says `broadcast`, with the counters of the worker's copy and the invalidations."""
    log, source = MemoryLog(), Source()
    async with worker(log) as one, worker(log) as two:
        await two.get_or_load("k", source.load)
        await one.invalidate("k")
        await two.get_or_load("k", source.load)
        statistics = two.statistics()
    assert statistics["backend"] == "broadcast"
    assert (statistics["hits"], statistics["misses"], statistics["invalidations"]) == (0, 2, 1)


async def test_open_cache_without_redis_is_a_shared_cache_on_the_broadcast() -> None:
    """No REDIS_URL: `open_cache` gives a `SharedCache`; with no broadcast either, a ConfigurationError."""
    broadcast = Broadcast(MemoryTransport(MemoryLog()))
    settings = Settings(REDIS_URL=None)
    cache = open_cache("orders", settings, broadcast, max_items=10, max_bytes=1000, ttl=5)
    assert isinstance(cache, SharedCache)
    assert (cache.local.maxsize, cache.local.max_bytes, cache.local.ttl) == (10, 1000, 5)
    with pytest.raises(ConfigurationError, match="REDIS_URL"):
        open_cache("orders", settings, None, max_items=10)


async def test_lookups_arriving_together_share_one_catch_up() -> None:
    """Ten lookups at once read the backend's newest id once, not ten times."""
    source = Source()
    async with worker(MemoryLog()) as cache:
        broadcast = cache._broadcast
        calls = 0
        real = broadcast.catch_up

        async def counted() -> None:
            nonlocal calls
            calls += 1
            await real()

        broadcast.catch_up = counted  # type: ignore[method-assign]
        await asyncio.gather(*(cache.get_or_load("k", source.load) for _ in range(10)))
    assert calls == 1


async def test_a_lookup_arriving_during_a_catch_up_waits_for_the_next() -> None:
    """A catch-up that began before a lookup arrived does not cover it: the lookup waits for another."""
    log, source = MemoryLog(), Source()
    async with worker(log) as one, worker(log) as two:
        await two.get_or_load("k", source.load)
        broadcast = two._broadcast
        real, gate, began, started = broadcast.catch_up, asyncio.Event(), asyncio.Event(), []

        async def slow_first() -> None:
            started.append(len(log.events))  # what this catch-up covers: the events published so far
            began.set()
            await real()
            if len(started) == 1:
                await gate.wait()

        broadcast.catch_up = slow_first  # type: ignore[method-assign]
        early = asyncio.create_task(two.get_or_load("k", source.load))
        await began.wait()
        source.version = 2
        await one.invalidate("k")
        late = asyncio.create_task(two.get_or_load("k", source.load))
        await wait_until(lambda: two._pending is not None)  # the late lookup waits for the next catch-up
        gate.set()
        await early
        assert await late == "v2"
    assert started == [0, 1]  # the late lookup's catch-up started after the invalidation was published
