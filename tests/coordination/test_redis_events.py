"""`RedisTransport` through outages: a private redis-server killed and restarted, a partition, Redis gone."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lastro.coordination.redis_events import RedisTransport
from lastro.errors import EventsExpired, ServiceUnavailable
from tests.coordination.conftest import REDIS_URL, running, wait_until
from tests.support.fault_proxy import FaultProxy
from tests.support.process import free_port, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


class PrivateRedis:
    """A redis-server of the test's own, without persistence: a restart loses everything."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def _answers(self) -> bool:
        import redis

        try:
            with redis.Redis(port=self.port, socket_timeout=0.5) as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    proxy = FaultProxy(("127.0.0.1", 6379))
    proxy.start()
    yield proxy
    proxy.stop()


def transport(url: str, prefix: str = "lastro-test:events") -> RedisTransport:
    return RedisTransport(url, timeout=0.5, prefix=prefix, ping_interval=0.2)


async def test_a_restart_that_lost_the_events_ends_subscriptions_and_delivery_resumes(
    private_redis: PrivateRedis,
) -> None:
    """Redis killed and restarted empty: subscribers get EventsExpired, and new events flow within 5 s."""
    async with running(transport(private_redis.url)) as one, running(transport(private_redis.url)) as two:
        async with two.subscribe("c") as events:
            before = await one.publish("c", {"n": 0})
            assert await asyncio.wait_for(events.get(), 10) == before
            private_redis.kill()
            private_redis.start()
            with pytest.raises(EventsExpired):
                await asyncio.wait_for(events.get(), 10)
        started = time.monotonic()
        async with two.subscribe("c") as events:
            await wait_until(lambda: one.statistics()["connected"])
            after = await one.publish("c", {"n": 1})
            assert await asyncio.wait_for(events.get(), 5) == after
        assert time.monotonic() - started < 5
        assert two.statistics()["reconnections"] >= 1
        assert after.id > before.id  # the lost counter was seeded above every id given before
        with pytest.raises(EventsExpired):
            await two.replay("c", before.id)


async def test_events_published_while_a_worker_was_cut_off_are_replayed_in_order(
    proxy: FaultProxy, redis_prefix: str
) -> None:
    """A partition (nothing forwarded, sockets open) is noticed, and what was missed arrives once healed."""
    async with (
        running(transport(REDIS_URL, redis_prefix)) as one,
        running(transport(proxy.redis_url, redis_prefix)) as two,
        two.subscribe("c") as events,
    ):
        proxy.blackhole()
        missed = [await one.publish("c", {"n": n}) for n in range(3)]
        await wait_until(lambda: not two.statistics()["connected"])
        proxy.restore()
        received = [await asyncio.wait_for(events.get(), 10) for _ in missed]
        assert received == missed
        live = await one.publish("c", {"n": 3})
        assert await asyncio.wait_for(events.get(), 10) == live
        assert two.statistics()["reconnections"] >= 1
        assert two.statistics()["last_error"] is not None


async def test_a_dropped_connection_is_replayed_without_a_loss(proxy: FaultProxy, redis_prefix: str) -> None:
    """Connections closed under the subscriber: it reconnects, and nothing published meanwhile is lost."""
    async with (
        running(transport(REDIS_URL, redis_prefix)) as one,
        running(transport(proxy.redis_url, redis_prefix)) as two,
        two.subscribe("c") as events,
    ):
        proxy.stop()
        missed = [await one.publish("c", {"n": n}) for n in range(3)]
        await wait_until(lambda: not two.statistics()["connected"])
        proxy.start()
        assert [await asyncio.wait_for(events.get(), 10) for _ in missed] == missed


async def test_publishing_without_redis_is_service_unavailable_within_the_timeout() -> None:
    """Nothing listening: publish fails fast with ServiceUnavailable (a 503), never hangs."""
    started = time.monotonic()
    closed = transport(f"redis://127.0.0.1:{free_port()}/0", f"lastro-test-{uuid.uuid4().hex}")
    try:
        with pytest.raises(ServiceUnavailable):
            await closed.publish("c", {"n": 1})
    finally:
        await closed.close()
    assert time.monotonic() - started < 3
