"""LoopLag and the MAX_LOOP_LAG refusal: a late event loop sheds new requests with 503."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from lastro.http.in_flight import InFlightLimitMiddleware
from lastro.http.loop_lag import LoopLag
from tests.support.clock import FakeTime

pytestmark = pytest.mark.anyio


async def test_a_fresh_loop_has_no_lag() -> None:
    """Right after the first call, nothing is overdue."""
    time = FakeTime()
    assert LoopLag(interval=0.05, clock=time.clock).current() == 0.0


async def late_loop(time: FakeTime, seconds: float) -> None:
    """The loop turns once while `seconds` pass: its timer (interval 0) runs that late."""
    time.now += seconds
    for _ in range(2):  # the timer runs after the step that yields first: give the loop two turns
        await asyncio.sleep(0)


async def test_the_lag_is_how_late_the_timer_ran() -> None:
    """Once the loop gets to its timer, the lag is how long after its due time that was."""
    time = FakeTime()
    lag = LoopLag(interval=0.0, clock=time.clock)
    lag.current()
    await late_loop(time, 1.0)
    assert lag.current() == pytest.approx(1.0)


async def test_an_overdue_timer_counts_once_the_loop_has_turned() -> None:
    """Requests after a long block see it before the timer runs, as soon as the loop has turned once."""
    time = FakeTime()
    lag = LoopLag(interval=3600.0, clock=time.clock)  # the real timer never comes due during the test
    lag.current()
    time.now += 3602.0
    assert lag.current() == 0.0  # no turn yet: this could be one long run of in-process calls
    await asyncio.sleep(0)
    assert lag.current() == pytest.approx(2.0)


async def test_a_loop_that_never_turns_shows_no_lag() -> None:
    """Work done without the loop turning (requests in-process, back to back) is not lag."""
    time = FakeTime()
    lag = LoopLag(interval=0.0, clock=time.clock)
    lag.current()
    time.now += 5.0
    assert lag.current() == 0.0


def app_with(lag: LoopLag, max_loop_lag: float) -> InFlightLimitMiddleware:
    app = FastAPI()

    @app.get("/work")
    async def work() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/health/live")
    async def live() -> dict[str, bool]:
        return {"ok": True}

    return InFlightLimitMiddleware(app, max_loop_lag=max_loop_lag, loop_lag=lag)


async def get(app: InFlightLimitMiddleware, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.get(path)


async def test_requests_are_served_while_the_loop_keeps_up() -> None:
    """Under MAX_LOOP_LAG, requests go through."""
    time = FakeTime()
    app = app_with(LoopLag(clock=time.clock), max_loop_lag=0.5)
    assert (await get(app, "/work")).status_code == 200


async def test_requests_are_shed_with_503_when_the_loop_runs_late() -> None:
    """Over MAX_LOOP_LAG, a request gets 503 problem+json with Retry-After naming the setting."""
    time = FakeTime()
    lag = LoopLag(interval=0.0, clock=time.clock)
    app = app_with(lag, max_loop_lag=0.5)
    await get(app, "/work")
    await late_loop(time, 2.0)
    refused = await get(app, "/work")
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "MAX_LOOP_LAG" in refused.json()["detail"]


async def test_health_probes_are_not_shed_for_lag() -> None:
    """A late loop still answers its health probes."""
    time = FakeTime()
    lag = LoopLag(interval=0.0, clock=time.clock)
    app = app_with(lag, max_loop_lag=0.5)
    await get(app, "/work")
    await late_loop(time, 2.0)
    assert (await get(app, "/health/live")).status_code == 200


async def test_a_zero_max_loop_lag_never_sheds() -> None:
    """MAX_LOOP_LAG=0 turns the lag check off."""
    time = FakeTime()
    lag = LoopLag(interval=0.0, clock=time.clock)
    app = app_with(lag, max_loop_lag=0.0)
    await get(app, "/work")
    await late_loop(time, 60.0)
    assert (await get(app, "/work")).status_code == 200


async def test_a_lag_under_a_second_is_measured_as_it_is() -> None:
    """A timer 250 ms late shows a lag of 250 ms, not rounded to anything."""
    time = FakeTime()
    lag = LoopLag(interval=0.0, clock=time.clock)
    lag.current()
    await late_loop(time, 0.25)
    assert lag.current() == pytest.approx(0.25)


async def test_once_the_loop_catches_up_the_lag_is_gone() -> None:
    """After a late timer, a timer on time brings the lag back to zero."""
    time = FakeTime()
    lag = LoopLag(interval=0.0, clock=time.clock)
    lag.current()
    await late_loop(time, 1.0)
    await late_loop(time, 0.0)
    assert lag.current() == 0.0


def test_by_default_the_loop_is_looked_at_twenty_times_a_second() -> None:
    """The default interval is 50 ms."""
    assert LoopLag().interval == 0.05
