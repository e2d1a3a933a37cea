"""Caches whose invalidation reaches every worker, and every machine: `SharedCache`, `RedisCache`.

```python
cache = open_cache("orders", settings, state.broadcast, max_items=1000, max_bytes=100 * 2**20, ttl=60)
order = await cache.get_or_load(f"{tenant_id}:{order_id}", load_order)  # a hit, or `load_order()`
...
await cache.invalidate(f"{tenant_id}:{order_id}")  # after the change committed, before answering
cache.invalidate_on_commit(connection, f"{tenant_id}:{order_id}")  # or inside the write unit itself
```

`open_cache` picks `RedisCache` (one copy in Redis, shared by every worker) when `REDIS_URL` is set, else
`SharedCache` (a copy per worker, its invalidations on the broadcast).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from sqlalchemy import Connection

from lastro.cache import LRUCache, estimate_size
from lastro.coordination.events import LOST, Broadcast, Event
from lastro.db.on_commit import on_commit
from lastro.errors import ConfigurationError, one_line
from lastro.observability.logging import get_logger

if TYPE_CHECKING:
    from lastro.settings import Settings

__all__ = ["Cache", "SharedCache", "open_cache"]

logger = get_logger("lastro.cache")

V = TypeVar("V")
Loader = Callable[[], Awaitable[V]]


class Cache(Protocol[V]):
    """What a route caches through, whichever the backend."""

    name: str

    async def get_or_load(self, key: str, loader: Loader[V]) -> V:
        """The cached value of `key`, or `await loader()` (remembered, unless invalidated meanwhile)."""
        ...

    async def invalidate(self, key: str) -> None:
        """Forget `key` everywhere: once this returns, no worker of any machine serves the old value."""
        ...

    def invalidate_on_commit(self, connection: Connection, key: str) -> None:
        """`invalidate(key)` with the write unit of `connection`: done by the time `unit.run` returns."""
        ...

    def statistics(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


class SharedCache(Generic[V]):
    """A `LRUCache` in each worker; `invalidate(key)` drops the key here and, through the broadcast
    (channel `cache:{name}`), in every other worker of every machine.

    The guarantee: once `invalidate(key)` has returned in one worker, a `get_or_load(key, ...)` that
    starts afterwards in any worker returns a value loaded after the invalidation began. It rests on:

    - the broadcast's `catch_up()`: a lookup first waits until every event published anywhere before it
      was delivered here, so the invalidation has dropped the key before the hit is trusted. That is one
      read of the backend's newest event id, shared by the lookups that arrive together (a catch-up that
      started after each of them); a lookup whose catch-up fails or takes over `catch_up_timeout`
      bypasses the cache: it loads, and stores nothing;
    - a generation: a value whose load began before an invalidation (or a loss) was delivered here is
      returned to its own caller but not stored, so a load racing with a change cannot outlive it;
    - the loader reading the data the invalidating change committed (no lagging replica), and the writer
      invalidating after its commit, before it answers.

    When the broadcast loses events it cannot replay, each worker forgets everything. The `ttl` bounds how
    long a value lives when no invalidation comes (a change made behind the service's back).
    """

    def __init__(
        self,
        name: str,
        broadcast: Broadcast,
        *,
        max_items: int,
        max_bytes: int | None = None,
        ttl: float | None = None,
        sizeof: Callable[[V], int] = estimate_size,
        catch_up_timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.channel = f"cache:{name}"
        self.local: LRUCache[str, V] = LRUCache(
            max_items, max_bytes=max_bytes, ttl=ttl, sizeof=sizeof, clock=clock
        )
        self.catch_up_timeout = catch_up_timeout
        self.generation = 0  # moves with each invalidation applied here: a load older than it is not kept
        self.invalidations = 0  # received here, from this worker or another
        self.bypassed = 0  # lookups that could not catch up with the broadcast
        self._bypassing = False
        self._pending: asyncio.Future[None] | None = None  # the next catch-up, not started yet
        self._driver: asyncio.Task[None] | None = None
        self._broadcast = broadcast
        self._unlisten = broadcast.listen(self.channel, self._on_event)

    async def get_or_load(self, key: str, loader: Loader[V]) -> V:
        """The value of `key` as of now: a hit once caught up with the broadcast, else `await loader()`."""
        try:
            async with asyncio.timeout(self.catch_up_timeout):
                await asyncio.shield(self._next_catch_up())
        except Exception as error:  # an invalidation might be on its way: this cache cannot be trusted now
            self.bypassed += 1
            if not self._bypassing:  # once per outage, not once per lookup
                self._bypassing = True
                reason = one_line(error) or "timed out"
                logger.warning("cache bypassed: the broadcast is behind", cache=self.name, error=reason)
            return await loader()
        if self._bypassing:
            self._bypassing = False
            logger.info("cache in use again: the broadcast caught up", cache=self.name)
        value = self.local.get(key)
        if value is not None:
            return value
        generation = self.generation
        value = await loader()
        if generation == self.generation:
            self.local.set(key, value)
        return value

    async def invalidate(self, key: str) -> None:
        """Drop `key` here, then publish it for every other worker; errors of the broadcast propagate."""
        self._drop(key)
        await self._broadcast.publish(self.channel, {"key": key})  # received here too: counted then

    def invalidate_on_commit(self, connection: Connection, key: str) -> None:
        """The invalidation travels in the unit's transaction (`Broadcast.publish_on_commit`); `key` is
        dropped here once it has committed."""
        self._broadcast.publish_on_commit(connection, self.channel, {"key": key})
        on_commit(connection, partial(self._drop, key))

    def clear(self) -> None:
        """Forget everything in this worker (not the others)."""
        self.generation += 1
        self.local.clear()

    def statistics(self) -> dict[str, Any]:
        return {
            "backend": "broadcast",
            **self.local.statistics(),
            "invalidations": self.invalidations,
            "bypassed": self.bypassed,
        }

    async def close(self) -> None:
        self._unlisten()
        self.local.clear()
        if self._driver is not None:
            self._driver.cancel()

    def _next_catch_up(self) -> asyncio.Future[None]:
        """A catch-up that starts after this call, shared by every lookup that arrives before it starts.

        One read of the backend serves a burst of lookups: those that arrive while a catch-up runs wait
        for the next one, which covers every event published before they arrived.
        """
        if self._pending is None:
            self._pending = asyncio.get_running_loop().create_future()
            self._pending.add_done_callback(_retrieve)  # a failure all waiters gave up on is not an error
            if self._driver is None or self._driver.done():
                self._driver = asyncio.create_task(self._drive(), name=f"cache-{self.name}-catch-up")
        return self._pending

    async def _drive(self) -> None:
        while self._pending is not None:
            batch, self._pending = self._pending, None
            try:
                await self._broadcast.catch_up()
            except Exception as error:
                batch.set_exception(error)
            else:
                batch.set_result(None)

    def _on_event(self, event: Event) -> None:
        if event is LOST:
            self.clear()
            return
        self.invalidations += 1
        key = event.data.get("key")
        if isinstance(key, str):
            self._drop(key)
        else:  # not one of ours: forgetting everything is always safe
            self.clear()

    def _drop(self, key: str) -> None:
        self.generation += 1
        self.local.pop(key)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def open_cache(
    name: str,
    settings: Settings,
    broadcast: Broadcast | None,
    *,
    max_items: int,
    max_bytes: int | None = None,
    ttl: float | None = None,
) -> Cache[Any]:
    """`RedisCache` when `REDIS_URL` is set, else a `SharedCache` on this worker's broadcast.

    Values must be JSON data (what a `RedisCache` can store), so that the choice stays a setting.
    """
    if settings.REDIS_URL:
        from lastro.coordination.redis_cache import RedisCache  # only with the redis extra

        return RedisCache(
            name,
            settings.REDIS_URL,
            prefix=f"lastro:{settings.SERVICE_NAME}:cache:{name}:",
            ttl=ttl,
            timeout=settings.REDIS_SOCKET_TIMEOUT,
        )
    if broadcast is None:
        raise ConfigurationError(
            f"cache {name!r} needs the broadcast (started with the service) or REDIS_URL"
        )
    return SharedCache(name, broadcast, max_items=max_items, max_bytes=max_bytes, ttl=ttl)
