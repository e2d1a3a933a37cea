"""`RedisStore`: rate-limit counts in Redis, shared by every worker of every machine.

The counting is the `limits` library's sliding window counter on its Redis storage (one Lua script per
check, atomic in Redis), read back with its `get_sliding_window` for the `RateLimit` fields. Each call is
bounded by `timeout` (`REDIS_SOCKET_TIMEOUT`), connecting included: past it, or on any Redis error, the
store raises `StoreUnavailable` and the limiter decides what to do.

With several rates for one request, each is acquired in turn: when a later rate refuses, the earlier ones
have counted the hit (Redis offers no cheap all-or-nothing across scripts here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio
from limits.aio.storage import RedisStorage

from lastro.errors import one_line
from lastro.ratelimit.stores import Check, StoreUnavailable
from lastro.ratelimit.window import Decision, Rate, WindowCounts, decide

__all__ = ["RedisStore"]


class RedisStore:
    name = "redis"

    def __init__(self, url: str, *, timeout: float, prefix: str = "lastro:") -> None:
        self.timeout = timeout
        # lastro owns the pool, so that it can close it: limits' storage has no close of its own.
        self._pool = redis.asyncio.ConnectionPool.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._client = redis.asyncio.Redis(connection_pool=self._pool)
        self._storage = RedisStorage(
            f"async+{url}",
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix=prefix.rstrip(":"),
            connection_pool=self._pool,  # type: ignore[arg-type]  # documented, typed too narrowly
        )

    async def hit(self, checks: Sequence[Check], cost: int = 1) -> list[Decision]:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._hit(checks, cost)
        except Exception as exc:
            if isinstance(exc, asyncio.CancelledError):  # pragma: no cover - not an Exception on 3.11
                raise
            raise StoreUnavailable(f"Redis did not answer: {one_line(exc)}") from exc

    async def _hit(self, checks: Sequence[Check], cost: int) -> list[Decision]:
        allowed = True
        for key, rate in checks:
            if not await self._storage.acquire_sliding_window_entry(key, rate.amount, rate.period, cost):
                allowed = False
                break
        return [decide(rate, await self._counts(key, rate), allowed, cost) for key, rate in checks]

    async def _counts(self, key: str, rate: Rate) -> WindowCounts:
        previous, previous_ttl, current, current_ttl = await self._storage.get_sliding_window(
            key, rate.period
        )
        period = rate.period
        # limits keeps the current window's key for two periods and renames it to the previous one when
        # less than a period is left: the time into the window follows from either TTL.
        if previous_ttl > 0:
            elapsed = period - previous_ttl
        elif current_ttl > 0:
            elapsed = 2 * period - current_ttl
        else:
            elapsed = 0.0
        return WindowCounts(previous, current, min(max(elapsed, 0.0), period - 1e-6))

    async def ping(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._client.ping()
        except Exception as exc:
            raise StoreUnavailable(f"Redis did not answer: {one_line(exc)}") from exc

    async def close(self) -> None:
        await self._pool.aclose()
