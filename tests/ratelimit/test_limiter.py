"""`RateLimiter`: the shared store when it answers; per-worker counts or a refusal when it does not."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from lastro.errors import RateLimitUnavailable
from lastro.observability.logging import configure_logging
from lastro.ratelimit.limiter import RateLimiter
from lastro.ratelimit.stores import Check, LocalStore, StoreUnavailable
from lastro.ratelimit.window import Decision, Rate
from tests.support.clock import FakeTime

RATE = Rate(2, 60)


class FlakyStore:
    """A shared store that answers like `LocalStore` while `up`, and fails while not."""

    name = "flaky"

    def __init__(self, time: FakeTime) -> None:
        self.up = True
        self.calls = 0
        self._counts = LocalStore(clock=time.clock)

    async def hit(self, checks: Sequence[Check], cost: int = 1) -> list[Decision]:
        self.calls += 1
        if not self.up:
            raise StoreUnavailable("connection refused")
        return self._counts.hit_now(checks, cost)

    async def ping(self) -> None:
        if not self.up:
            raise StoreUnavailable("connection refused")

    async def close(self) -> None:
        pass


@pytest.fixture
def time() -> FakeTime:
    return FakeTime(6000)


def limiter_on(store: FlakyStore, time: FakeTime) -> RateLimiter:
    return RateLimiter(store, fallback=LocalStore(clock=time.clock), retry_interval=1.0, clock=time.clock)


def hit(limiter: RateLimiter, *, fail_closed: bool = False) -> bool:
    return asyncio.run(limiter.hit([("a", RATE)], fail_closed=fail_closed))[0].allowed


def test_the_store_decides_while_it_answers(time: FakeTime) -> None:
    """With the store up, its counts decide, and nothing is counted as a fallback."""
    store = FlakyStore(time)
    limiter = limiter_on(store, time)
    assert [hit(limiter) for _ in range(3)] == [True, True, False]
    assert limiter.statistics()["fallbacks"] == 0


def test_a_general_limit_fails_open_onto_this_workers_counts(time: FakeTime) -> None:
    """With the store down, a general limit still holds, counted by this worker alone."""
    store = FlakyStore(time)
    store.up = False
    limiter = limiter_on(store, time)
    assert [hit(limiter) for _ in range(3)] == [True, True, False]
    assert limiter.statistics() == {
        "store": "flaky",
        "degraded": True,
        "fallbacks": 3,
        "refusals": 0,
        "last_error": "connection refused",
    }


def test_a_fail_closed_limit_refuses_while_the_store_is_down(time: FakeTime) -> None:
    """Login's limit answers 503 rather than count per worker while the store is down."""
    store = FlakyStore(time)
    store.up = False
    limiter = limiter_on(store, time)
    with pytest.raises(RateLimitUnavailable) as refused:
        hit(limiter, fail_closed=True)
    assert refused.value.retry_after == 1
    assert limiter.refusals == 1


def test_a_down_store_is_left_alone_until_the_retry_interval_passes(time: FakeTime) -> None:
    """After a failure no request waits on the store again for `retry_interval` seconds."""
    store = FlakyStore(time)
    store.up = False
    limiter = limiter_on(store, time)
    hit(limiter)
    hit(limiter)
    assert store.calls == 1
    store.up = True
    time.now += 1.0
    hit(limiter)
    assert store.calls == 2
    assert not limiter.degraded


def test_the_outage_is_logged_once_per_interval(time: FakeTime, capsys: pytest.CaptureFixture[str]) -> None:
    """Many requests meeting a down store write one warning line naming the store, not one each."""
    configure_logging("INFO", "json")
    store = FlakyStore(time)
    store.up = False
    limiter = limiter_on(store, time)
    for _ in range(5):
        hit(limiter)
        time.now += 1.0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    warnings = [line for line in lines if line["event"].startswith("rate-limit store unavailable")]
    assert [(line["level"], line["store"], line["error"]) for line in warnings] == [
        ("warning", "flaky", "connection refused")
    ]


def test_an_outage_stays_reported_until_the_store_answers_again(time: FakeTime) -> None:
    """`degraded` holds past the retry interval, until a call succeeds: /health tells an idle worker too."""
    store = FlakyStore(time)
    store.up = False
    limiter = limiter_on(store, time)
    hit(limiter)
    time.now += 60
    assert limiter.degraded


def test_a_probe_learns_of_an_outage_and_of_its_end(time: FakeTime) -> None:
    """The health check's probe marks the store degraded while it fails, and clears it once it answers."""
    store = FlakyStore(time)
    limiter = limiter_on(store, time)
    store.up = False
    asyncio.run(limiter.probe())
    assert limiter.degraded
    store.up = True
    asyncio.run(limiter.probe())
    assert not limiter.degraded
