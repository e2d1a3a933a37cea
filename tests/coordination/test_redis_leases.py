"""`RedisLeases` on the Redis server: one holder at a time, Redis's own expiry, release by the holder only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from lastro.coordination.redis_leases import RedisLeases

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def leases() -> AsyncIterator[RedisLeases]:
    store = RedisLeases(REDIS_URL, timeout=2.0, prefix=f"lastro-test:{uuid.uuid4().hex}:")
    yield store
    await store.close()


async def test_a_held_lease_is_refused_to_another_holder(leases: RedisLeases) -> None:
    """The first holder gets it, and nobody else while it lasts."""
    assert await leases.acquire("job:a", "one", 30)
    assert not await leases.acquire("job:a", "two", 30)


async def test_the_holder_renews_its_lease(leases: RedisLeases) -> None:
    """Renewing by the holder succeeds."""
    await leases.acquire("job:a", "one", 30)
    assert await leases.renew("job:a", "one", 30)


async def test_a_lease_expires_with_its_ttl_in_redis(leases: RedisLeases) -> None:
    """The key carries the ttl as Redis's own expiry."""
    await leases.acquire("job:a", "one", 30)
    async with redis.asyncio.Redis.from_url(REDIS_URL) as client:
        remaining = await client.pttl(leases.prefix + "job:a")
    assert 29_000 < remaining <= 30_000


async def test_an_expired_lease_passes_to_another_holder(leases: RedisLeases) -> None:
    """Once Redis has expired the key, the next holder takes it and the old one cannot renew."""
    await leases.acquire("job:a", "one", 30)
    async with redis.asyncio.Redis.from_url(REDIS_URL) as client:
        await client.delete(leases.prefix + "job:a")  # what the expiry does, without waiting 30 s
    assert await leases.acquire("job:a", "two", 30)
    assert not await leases.renew("job:a", "one", 30)


async def test_only_the_holder_releases(leases: RedisLeases) -> None:
    """Another holder's release changes nothing; the holder's frees the lease at once."""
    await leases.acquire("job:a", "one", 30)
    assert not await leases.release("job:a", "two")
    assert await leases.release("job:a", "one")
    assert await leases.acquire("job:a", "two", 30)
