"""LoopWatchdog: a loop that has not turned for `timeout` seconds is reported with its stack and requests."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from fastapi import FastAPI

from lastro.http.access_log import AccessLogMiddleware
from lastro.http.request_id import RequestIdMiddleware
from lastro.observability.watchdog import LoopWatchdog, Stall
from tests.support.clock import FakeTime

pytestmark = pytest.mark.anyio


class Stalls:
    """Records what the watchdog reports instead of ending the process."""

    def __init__(self) -> None:
        self.seen: list[Stall] = []
        self.reported = threading.Event()

    def __call__(self, stall: Stall) -> None:
        self.seen.append(stall)
        self.reported.set()


def watchdog(time: FakeTime, stalls: Stalls, interval: float = 1.0) -> LoopWatchdog:
    return LoopWatchdog(5.0, interval=interval, clock=time.clock, on_stall=stalls)


def test_a_loop_that_beats_is_not_reported() -> None:
    """A heartbeat less than `timeout` overdue is no stall."""
    time, stalls = FakeTime(), Stalls()
    dog = watchdog(time, stalls)
    dog.beat()
    time.now += 1.0 + 4.9  # one interval, then 4.9 s overdue
    assert not dog.check()
    assert stalls.seen == []


def test_a_heartbeat_timeout_overdue_is_reported_once_with_how_long() -> None:
    """`timeout` seconds past the due heartbeat: on_stall gets how long the loop has not turned."""
    time, stalls = FakeTime(), Stalls()
    dog = watchdog(time, stalls)
    dog.beat()
    time.now += 1.0 + 6.0
    assert dog.check()
    assert [stall.blocked_seconds for stall in stalls.seen] == [6.0]
    assert stalls.seen[0].timeout == 5.0


def test_the_stall_carries_the_stack_of_the_loop_thread() -> None:
    """The stack is the loop thread's, down to the function that holds it."""
    time, stalls = FakeTime(), Stalls()
    dog = watchdog(time, stalls)  # built on this thread: this thread is the loop's

    def holding_the_loop() -> bool:
        time.now += 10.0
        return dog.check()

    assert holding_the_loop()
    assert "in holding_the_loop" in stalls.seen[0].stack


def test_a_stopped_watchdog_reports_nothing() -> None:
    """After stop() (the worker is shutting down) an overdue heartbeat is not a stall."""
    time, stalls = FakeTime(), Stalls()
    dog = watchdog(time, stalls)
    dog.stop()
    time.now += 60.0
    assert not dog.check()


async def test_the_stall_lists_the_requests_in_flight_with_route_and_request_id() -> None:
    """A stall seen while a request is served names its method, path, route and request id."""
    time, stalls = FakeTime(), Stalls()
    dog = watchdog(time, stalls)
    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def order(order_id: int) -> dict[str, bool]:
        time.now += 10.0
        return {"stalled": dog.check()}

    transport = httpx.ASGITransport(app=RequestIdMiddleware(AccessLogMiddleware(app)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/orders/7", headers={"X-Request-ID": "stuck-0123456789"})
    assert response.json() == {"stalled": True}
    [request] = stalls.seen[0].requests
    assert request["method"] == "GET"
    assert request["path"] == "/orders/7"
    assert request["route"] == "/orders/{order_id}"
    assert request["request_id"] == "stuck-0123456789"
    assert request["seconds"] >= 0


async def test_the_loop_timer_keeps_the_heartbeat_current() -> None:
    """Started on a loop that turns, the heartbeat follows the clock: no stall however long it runs."""
    time, stalls = FakeTime(), Stalls()
    with watchdog(time, stalls, interval=0.01) as dog:
        for _ in range(5):
            time.now += 3.0
            await asyncio.sleep(0.03)  # the loop turns: its timer beats
        stalled = dog.check()
    assert not stalled
    assert stalls.seen == []


async def test_the_watchdog_thread_reports_a_loop_held_by_a_blocking_call() -> None:
    """Started, then the loop is held: the thread reports it without the loop's help."""
    time, stalls = FakeTime(), Stalls()
    with watchdog(time, stalls, interval=0.01):
        time.now += 10.0
        reported = stalls.reported.wait(5)  # blocks the loop, as a blocking handler would
    assert reported
    assert "in test_the_watchdog_thread_reports_a_loop_held_by_a_blocking_call" in stalls.seen[0].stack
