"""`RedisStore` against the real Redis on 127.0.0.1:6379: counts, decisions, and a Redis that is gone."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis

from lastro.ratelimit.redis_store import RedisStore
from lastro.ratelimit.stores import StoreUnavailable
from lastro.ratelimit.window import Rate
from tests.support.fault_proxy import FaultProxy
from tests.support.servers import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

REDIS_URL = "redis://127.0.0.1:6379/0"
TIMEOUT = 0.3  # REDIS_SOCKET_TIMEOUT of these stores
MARGIN = 0.3  # what a loaded 2-core machine may add to it
MINUTE = Rate(3, 60)
HOUR = Rate(10, 3600)

Stores = Callable[..., RedisStore]


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    name = f"lastro-test-{uuid.uuid4().hex[:12]}:"
    yield name
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{name.rstrip(':')}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
async def stores(prefix: str) -> AsyncIterator[Stores]:
    """Opens `RedisStore`s on the test's prefix (on the real Redis unless told a URL); closes them."""
    opened: list[RedisStore] = []

    def open_store(url: str = REDIS_URL, timeout: float = TIMEOUT) -> RedisStore:
        store = RedisStore(url, timeout=timeout, prefix=prefix)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    proxy = FaultProxy(("127.0.0.1", 6379))
    proxy.start()
    yield proxy
    proxy.stop()


async def test_hits_are_allowed_up_to_the_rate_then_refused(stores: Stores) -> None:
    """Three of 3/minute pass with 2, 1, 0 remaining; the fourth is refused."""
    store = stores()
    decisions = [(await store.hit([("client", MINUTE)]))[0] for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]


async def test_two_stores_on_one_redis_share_the_count(stores: Stores) -> None:
    """What one machine counted, another sees: the limit holds across them."""
    first, second = stores(), stores()
    await first.hit([("client", MINUTE)])
    await first.hit([("client", MINUTE)])
    assert (await second.hit([("client", MINUTE)]))[0].remaining == 0
    assert not (await first.hit([("client", MINUTE)]))[0].allowed


async def test_keys_are_counted_apart(stores: Stores) -> None:
    """One client over its limit leaves another's untouched."""
    store = stores()
    for _ in range(4):
        await store.hit([("a", MINUTE)])
    decision = (await store.hit([("b", MINUTE)]))[0]
    assert decision.allowed
    assert decision.remaining == 2


async def test_a_cost_counts_that_many_hits(stores: Stores) -> None:
    """A hit of cost 2 leaves 1 of 3; another of cost 2 no longer fits."""
    store = stores()
    assert (await store.hit([("client", MINUTE)], cost=2))[0].remaining == 1
    assert not (await store.hit([("client", MINUTE)], cost=2))[0].allowed


async def test_every_rate_gets_a_decision(stores: Stores) -> None:
    """Two rates on one request: a decision for each, each with its own remaining count."""
    store = stores()
    decisions = await store.hit([("m", MINUTE), ("h", HOUR)])
    assert [(d.allowed, d.rate, d.remaining) for d in decisions] == [(True, MINUTE, 2), (True, HOUR, 9)]


async def test_one_rate_refusing_refuses_the_request_for_all(stores: Stores) -> None:
    """Over the minute rate, every decision refuses, and the hour rate after it is not counted."""
    store = stores()
    for _ in range(3):
        await store.hit([("m", MINUTE), ("h", HOUR)])
    decisions = await store.hit([("m", MINUTE), ("h", HOUR)])
    assert [d.allowed for d in decisions] == [False, False]
    assert decisions[1].remaining == HOUR.amount - 3


async def test_retry_after_of_a_refusal_is_when_the_hits_have_slid_out(stores: Stores) -> None:
    """3 of 3/minute just now: back in 60 s, when they become the previous window and round down to 2."""
    store = stores()
    for _ in range(3):
        allowed = (await store.hit([("client", MINUTE)]))[0]
        assert 59 < allowed.reset_after <= 60
    refused = (await store.hit([("client", MINUTE)]))[0]
    assert not refused.allowed
    # At 60 s the hits become the previous window, weighing floor(3 * (1 - elapsed / 60)) = 2 at once:
    # the Redis script rounds the previous share down, and Retry-After follows it.
    assert 58 <= refused.retry_after <= 60


async def test_a_closed_port_raises_store_unavailable_at_once(stores: Stores) -> None:
    """Nothing listening: `StoreUnavailable` well within the socket timeout."""
    store = stores(f"redis://127.0.0.1:{free_port()}/0", timeout=2.0)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.hit([("client", MINUTE)])
    assert time.monotonic() - started < 1.0


async def test_a_blackholed_redis_raises_within_the_socket_timeout(stores: Stores, proxy: FaultProxy) -> None:
    """A connection accepted but never answered: `StoreUnavailable` after the timeout, not a hang."""
    proxy.blackhole()
    store = stores(proxy.redis_url)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.hit([("client", MINUTE)])
    assert time.monotonic() - started < TIMEOUT + MARGIN


async def test_redis_blackholed_while_connected_raises_within_the_socket_timeout(
    stores: Stores, proxy: FaultProxy
) -> None:
    """A pooled connection that stops answering mid-way: each call gives up after the timeout."""
    store = stores(proxy.redis_url)
    await store.hit([("client", MINUTE)])
    proxy.blackhole()
    for _ in range(2):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.hit([("client", MINUTE)])
        assert time.monotonic() - started < TIMEOUT + MARGIN


async def test_the_store_counts_again_once_redis_is_back(stores: Stores, proxy: FaultProxy) -> None:
    """After a blackhole heals, the same store reconnects and the count goes on where it was."""
    store = stores(proxy.redis_url)
    await store.hit([("client", MINUTE)])
    proxy.blackhole()
    with pytest.raises(StoreUnavailable):
        await store.hit([("client", MINUTE)])
    proxy.drop_all()
    proxy.restore()
    decision = (await store.hit([("client", MINUTE)]))[0]
    assert decision.allowed
    assert decision.remaining == 1


async def test_dropped_connections_are_replaced(stores: Stores, proxy: FaultProxy) -> None:
    """Redis closing every connection (a restart) costs at most the call in flight, never a hang."""
    store = stores(proxy.redis_url)
    await store.hit([("client", MINUTE)])
    proxy.drop_all()
    started = time.monotonic()
    with contextlib.suppress(StoreUnavailable):  # the call in flight may fail, or be retried
        await store.hit([("client", MINUTE)])
    assert time.monotonic() - started < TIMEOUT + MARGIN
    assert (await store.hit([("other", MINUTE)]))[0].allowed


async def test_a_ping_answers_only_while_redis_does(stores: Stores) -> None:
    """The health probe's ping passes on the real Redis and fails as StoreUnavailable on a closed port."""
    await stores().ping()
    with pytest.raises(StoreUnavailable):
        await stores(f"redis://127.0.0.1:{free_port()}/0").ping()
