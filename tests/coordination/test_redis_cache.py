"""`RedisCache` against the real Redis (a key prefix of the test's own), and with Redis gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis

from lastro.coordination.cache import open_cache
from lastro.coordination.redis_cache import RedisCache
from lastro.errors import ServiceUnavailable
from lastro.observability.logging import configure_logging
from lastro.settings import Settings
from tests.coordination.conftest import REDIS_URL
from tests.coordination.test_redis_events import PrivateRedis

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    """A key prefix of the test's own; its keys are deleted afterwards (`redis_prefix`)."""
    return f"{redis_prefix}:cache:"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@asynccontextmanager
async def opened(url: str, prefix: str, ttl: float | None = 60.0) -> AsyncIterator[RedisCache[object]]:
    cache: RedisCache[object] = RedisCache("orders", url, prefix=prefix, ttl=ttl, timeout=0.5)
    try:
        yield cache
    finally:
        await cache.close()


class Source:
    def __init__(self) -> None:
        self.version = 1
        self.loads = 0

    async def load(self) -> dict[str, object]:
        self.loads += 1
        return {"version": self.version, "body": "é"}


async def test_a_value_is_shared_by_every_worker(prefix: str) -> None:
    """Loaded once by one worker, the JSON value is a hit for another worker's cache."""
    source = Source()
    async with opened(REDIS_URL, prefix) as one, opened(REDIS_URL, prefix) as two:
        assert await one.get_or_load("k", source.load) == {"version": 1, "body": "é"}
        assert await two.get_or_load("k", source.load) == {"version": 1, "body": "é"}
    assert source.loads == 1
    assert (one.misses, two.hits) == (1, 1)


async def test_an_invalidation_is_seen_at_once_by_every_worker(prefix: str) -> None:
    """After `invalidate` returns on one worker, the other loads the new value."""
    source = Source()
    async with opened(REDIS_URL, prefix) as one, opened(REDIS_URL, prefix) as two:
        await two.get_or_load("k", source.load)
        source.version = 2
        await one.invalidate("k")
        assert await two.get_or_load("k", source.load) == {"version": 2, "body": "é"}


async def test_a_load_racing_with_an_invalidation_is_not_stored(prefix: str) -> None:
    """A value loaded before a change and stored after its invalidation is refused by the generation."""
    source = Source()
    loading, change_done = asyncio.Event(), asyncio.Event()

    async def slow_old_load() -> dict[str, object]:
        value = await source.load()
        loading.set()
        await change_done.wait()
        return value

    async with opened(REDIS_URL, prefix) as one, opened(REDIS_URL, prefix) as two:
        racing = asyncio.create_task(two.get_or_load("k", slow_old_load))
        await loading.wait()
        source.version = 2
        await one.invalidate("k")
        change_done.set()
        assert (await racing)["version"] == 1
        assert (await two.get_or_load("k", source.load))["version"] == 2


async def test_values_expire_with_the_ttl(prefix: str) -> None:
    """The key is written with the cache's TTL."""
    async with opened(REDIS_URL, prefix, ttl=30.0) as cache:
        await cache.get_or_load("k", Source().load)
    with redis.Redis.from_url(REDIS_URL) as client:
        assert 0 < client.pttl(f"{prefix}k") <= 30_000


async def test_redis_down_falls_back_to_the_loader_with_one_warning(
    private_redis: PrivateRedis, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Redis stopped: every lookup is loaded, no error; one warning; back to hits once Redis returns."""
    configure_logging("INFO", "json")  # onto this test's captured stdout, whatever ran before
    source = Source()
    async with opened(private_redis.url, prefix) as cache:
        await cache.get_or_load("k", source.load)
        private_redis.kill()
        for _ in range(3):
            assert (await cache.get_or_load("k", source.load))["version"] == 1
        assert source.loads == 4
        assert capsys.readouterr().out.count("cache unavailable: loading without it") == 1
        assert cache.statistics()["connected"] is False
        with pytest.raises(ServiceUnavailable):
            await cache.invalidate("k")
        private_redis.start()
        await cache.get_or_load("k", source.load)
        await cache.get_or_load("k", source.load)
        assert cache.statistics()["connected"] is True
    assert source.loads == 5


async def test_open_cache_with_redis_is_a_redis_cache() -> None:
    """REDIS_URL set: `open_cache` gives a `RedisCache` under the service's prefix, broadcast or not."""
    cache = open_cache("orders", Settings(REDIS_URL=REDIS_URL, SERVICE_NAME="svc"), None, max_items=1, ttl=5)
    assert isinstance(cache, RedisCache)
    assert cache.prefix == "lastro:svc:cache:orders:"
    await cache.close()
