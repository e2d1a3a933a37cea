"""`RedisCache`: one copy of each value in Redis, shared by every worker of every machine.

Values are JSON (orjson) under `{prefix}{key}` with the cache's TTL; `invalidate` deletes the key, so every
worker sees the change at once, with no broadcast. A load racing with an invalidation is not stored after
it: each key has a generation (`{prefix}{key}:generation`) that `invalidate` increments, and the value is
written by a script only if the generation is still the one read before loading.

Redis unreachable (or slower than `timeout`): lookups fail open to the loader, with one warning per
outage; `invalidate` raises `ServiceUnavailable`, since a change it cannot announce could be served stale.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Generic, TypeVar, cast

import orjson
import redis.asyncio
from sqlalchemy import Connection

from lastro.db.on_commit import on_commit
from lastro.errors import ServiceUnavailable, one_line
from lastro.observability.logging import get_logger

__all__ = ["RedisCache"]

logger = get_logger("lastro.cache")

V = TypeVar("V")

# KEYS: value, generation. ARGV: generation read before loading ("" for none), value, ttl in ms (0: none).
_STORE_IF_CURRENT = """
local generation = redis.call('GET', KEYS[2]) or ''
if generation ~= ARGV[1] then return 0 end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
"""
_GENERATION_TTL_MS = 24 * 3600 * 1000  # outlives any load: a generation that expired reads as none


class RedisCache(Generic[V]):
    def __init__(self, name: str, url: str, *, prefix: str, ttl: float | None, timeout: float) -> None:
        self.name = name
        self.prefix = prefix
        self.ttl = ttl
        self.timeout = timeout
        self._pool = redis.asyncio.ConnectionPool.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._client = redis.asyncio.Redis(connection_pool=self._pool)
        self._store = self._client.register_script(_STORE_IF_CURRENT)
        self._ttl_ms = int(ttl * 1000) if ttl is not None else 0
        self._down = False
        self.hits = 0
        self.misses = 0
        self.errors = 0  # lookups answered by the loader because Redis was not
        self.invalidations = 0
        self.last_error: str | None = None

    async def get_or_load(self, key: str, loader: Callable[[], Awaitable[V]]) -> V:
        """The value in Redis, else `await loader()` (stored unless invalidated meanwhile)."""
        name, generation_key = self.prefix + key, f"{self.prefix}{key}:generation"
        try:
            async with asyncio.timeout(self.timeout):
                stored, generation = await self._client.mget([name, generation_key])
        except Exception as error:
            self._failed(error)
            return await loader()
        self._recovered()
        if stored is not None:
            self.hits += 1
            return cast(V, orjson.loads(stored))
        self.misses += 1
        value = await loader()
        current = generation.decode() if isinstance(generation, bytes) else (generation or "")
        try:
            async with asyncio.timeout(self.timeout):
                await self._store(
                    keys=[name, generation_key], args=[current, orjson.dumps(value), self._ttl_ms]
                )
        except Exception as error:
            self._failed(error)
        return value

    def invalidate_on_commit(self, connection: Connection, key: str) -> None:
        """`invalidate(key)` once the write unit of `connection` has committed; its failure propagates."""
        on_commit(connection, partial(self.invalidate, key))

    async def invalidate(self, key: str) -> None:
        """Delete `key` and move its generation, so that a load in flight does not store the old value."""
        generation_key = f"{self.prefix}{key}:generation"
        try:
            async with asyncio.timeout(self.timeout):
                async with self._client.pipeline(transaction=True) as pipeline:
                    pipeline.incr(generation_key)
                    pipeline.pexpire(generation_key, _GENERATION_TTL_MS)
                    pipeline.delete(self.prefix + key)
                    await pipeline.execute()
        except Exception as error:
            self._failed(error)
            raise ServiceUnavailable(
                f"cache {self.name!r} could not be invalidated: Redis did not answer"
            ) from error
        self.invalidations += 1

    def statistics(self) -> dict[str, Any]:
        lookups = self.hits + self.misses
        return {
            "backend": "redis",
            "connected": not self._down,
            "hits": self.hits,
            "misses": self.misses,
            "hit_ratio": round(self.hits / lookups, 4) if lookups else None,
            "errors": self.errors,
            "invalidations": self.invalidations,
            "last_error": self.last_error,
        }

    async def close(self) -> None:
        await self._pool.aclose()

    def _failed(self, error: BaseException) -> None:
        self.errors += 1
        self.last_error = one_line(error) or "timed out"
        if not self._down:  # once per outage, not once per lookup
            self._down = True
            logger.warning("cache unavailable: loading without it", cache=self.name, error=self.last_error)

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            logger.info("cache available again", cache=self.name)
