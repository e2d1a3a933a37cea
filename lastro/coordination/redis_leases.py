"""`RedisLeases`: named leases as Redis keys, for services with REDIS_URL.

A lease is the key `<prefix><name>` holding its holder, with Redis's own expiry (`PX`): taking or renewing
is one Lua script (set the key if it is missing or already the holder's), giving it up another (delete it
only if it is the holder's), each atomic in Redis. Expiry is Redis's clock, so the machines' clocks need
not agree. Each call is bounded by `timeout` (REDIS_SOCKET_TIMEOUT); an error or a timeout raises, and the
job loop then stops leading until Redis answers (the run rows in the database still guard each slot).
"""

from __future__ import annotations

import asyncio

import redis.asyncio

__all__ = ["RedisLeases"]

_TAKE = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLeases:
    def __init__(self, url: str, *, timeout: float, prefix: str = "lastro:lease:") -> None:
        self.timeout = timeout
        self.prefix = prefix
        self._client = redis.asyncio.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._take = self._client.register_script(_TAKE)
        self._release = self._client.register_script(_RELEASE)

    async def acquire(self, name: str, holder: str, ttl: float) -> bool:
        milliseconds = max(1, round(ttl * 1000))
        async with asyncio.timeout(self.timeout):
            return bool(await self._take(keys=[self.prefix + name], args=[holder, milliseconds]))

    async def renew(self, name: str, holder: str, ttl: float) -> bool:
        return await self.acquire(name, holder, ttl)

    async def release(self, name: str, holder: str) -> bool:
        async with asyncio.timeout(self.timeout):
            return bool(await self._release(keys=[self.prefix + name], args=[holder]))

    async def close(self) -> None:
        await self._client.aclose()
