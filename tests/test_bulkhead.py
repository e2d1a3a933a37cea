"""Bulkhead: at most `capacity` calls at once, on threads of its own, a bounded wait, then a 503."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.to_thread
import pytest

from lastro.bulkhead import Bulkhead
from lastro.errors import ServiceUnavailable
from lastro.observability.logging import configure_logging
from tests.support.clock import FakeTime

pytestmark = pytest.mark.anyio

GATE_TIMEOUT = 5.0  # a blocked call never outlives a failing test by more than this


class Gate:
    """Blocking calls that wait until the test opens the gate, counting how many run at once."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def call(self, value: str = "done") -> str:
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            assert self.opened.wait(GATE_TIMEOUT), "the gate was never opened"
            return value
        finally:
            with self._lock:
                self.active -= 1

    def open(self) -> None:
        self.opened.set()


@pytest.fixture
def bulkheads() -> Iterator[Callable[..., Bulkhead]]:
    """Makes bulkheads, and closes them after the test."""
    made: list[Bulkhead] = []

    def make(*args: Any, **options: Any) -> Bulkhead:
        made.append(Bulkhead(*args, **options))
        return made[-1]

    yield make
    for bulkhead in made:
        bulkhead.close()


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until `condition` holds; fail after a few seconds."""
    for _ in range(int(GATE_TIMEOUT / 0.001)):
        if condition():
            return
        await anyio.sleep(0.001)
    raise AssertionError("condition not met")


async def test_run_returns_what_the_call_returns(bulkheads: Callable[..., Bulkhead]) -> None:
    """Arguments and keyword arguments go through, the result comes back."""
    bulkhead = bulkheads("test", capacity=1, wait=0)
    assert await bulkhead.run(int, "ff", base=16) == 255
    assert bulkhead.running == 0


async def test_an_error_in_the_call_propagates_and_frees_the_slot(bulkheads: Callable[..., Bulkhead]) -> None:
    """The call's exception reaches the caller and its slot is free for the next call."""
    bulkhead = bulkheads("test", capacity=1, wait=0)
    with pytest.raises(ValueError, match="invalid literal"):
        await bulkhead.run(int, "not a number")
    assert await bulkhead.run(int, "7") == 7


async def test_no_more_than_capacity_calls_run_at_once(bulkheads: Callable[..., Bulkhead]) -> None:
    """Six calls on a bulkhead of two: two run, four wait, all finish once unblocked."""
    bulkhead = bulkheads("test", capacity=2, wait=GATE_TIMEOUT)
    gate = Gate()
    results: list[str] = []

    async def call(value: str) -> None:
        results.append(await bulkhead.run(gate.call, value))

    try:
        async with anyio.create_task_group() as tasks:
            for number in range(6):
                tasks.start_soon(call, str(number))
            await until(lambda: gate.active == 2 and bulkhead.waiting == 4)
            assert bulkhead.running == 2
            gate.open()
    finally:
        gate.open()
    assert sorted(results) == [str(number) for number in range(6)]
    assert gate.most_active == 2


async def test_a_caller_gets_the_slot_freed_within_its_wait(bulkheads: Callable[..., Bulkhead]) -> None:
    """A call that finds the bulkhead full runs when a slot frees before its wait ends."""
    bulkhead = bulkheads("test", capacity=1, wait=GATE_TIMEOUT)
    gate = Gate()
    results: list[str] = []

    async def call(value: str) -> None:
        results.append(await bulkhead.run(gate.call, value))

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call, "first")
            await until(lambda: bulkhead.running == 1)
            tasks.start_soon(call, "second")
            await until(lambda: bulkhead.waiting == 1)
            gate.open()
    finally:
        gate.open()
    assert results == ["first", "second"]
    assert bulkhead.rejected == 0


async def test_a_full_bulkhead_without_wait_refuses_at_once(bulkheads: Callable[..., Bulkhead]) -> None:
    """With `wait=0`, a call beyond capacity is refused with ServiceUnavailable and its Retry-After."""
    bulkhead = bulkheads("hashing", capacity=1, wait=0, retry_after=3)
    gate = Gate()
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(bulkhead.run, gate.call)
            await until(lambda: bulkhead.running == 1)
            with pytest.raises(ServiceUnavailable) as refused:
                await bulkhead.run(gate.call)
            gate.open()
    finally:
        gate.open()
    assert refused.value.retry_after == 3
    assert "hashing" in refused.value.detail
    assert bulkhead.rejected == 1
    assert gate.most_active == 1


async def test_a_caller_waits_at_most_its_wait(bulkheads: Callable[..., Bulkhead]) -> None:
    """A call that no slot frees for is refused once `wait` (50 ms here) has passed, not later."""
    bulkhead = bulkheads("test", capacity=1, wait=0.05)
    gate = Gate()
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(bulkhead.run, gate.call)
            await until(lambda: bulkhead.running == 1)
            started = anyio.current_time()
            with pytest.raises(ServiceUnavailable):
                await bulkhead.run(gate.call)
            waited = anyio.current_time() - started
            gate.open()
    finally:
        gate.open()
    assert 0.04 <= waited < 2.0
    assert bulkhead.waiting == 0


async def test_its_threads_are_not_drawn_from_the_default_limiter(bulkheads: Callable[..., Bulkhead]) -> None:
    """A running call holds none of anyio's default thread tokens, which the database and probes use."""
    bulkhead = bulkheads("test", capacity=2, wait=0)
    gate = Gate()
    default = anyio.to_thread.current_default_thread_limiter()
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(bulkhead.run, gate.call)
            tasks.start_soon(bulkhead.run, gate.call)
            await until(lambda: gate.active == 2)
            assert default.borrowed_tokens == 0
            gate.open()
    finally:
        gate.open()


async def test_statistics_show_capacity_load_and_refusals(bulkheads: Callable[..., Bulkhead]) -> None:
    """`statistics()` is what /health shows: capacity, running, waiting, refused so far."""
    bulkhead = bulkheads("test", capacity=3, wait=0)
    assert bulkhead.statistics() == {"capacity": 3, "running": 0, "waiting": 0, "rejected": 0}


@pytest.fixture
def log_records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    configure_logging("INFO", "json")  # lastro's logs go through stdlib logging, where caplog sees them
    return caplog


async def test_refusals_are_logged_at_most_once_per_interval(
    bulkheads: Callable[..., Bulkhead], log_records: pytest.LogCaptureFixture
) -> None:
    """A flood of refusals logs one line, then one per `log_interval` carrying the count since the last."""
    fake_time = FakeTime()
    bulkhead = bulkheads("test", capacity=1, wait=0, log_interval=10.0, clock=fake_time.clock)
    gate = Gate()
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(bulkhead.run, gate.call)
            await until(lambda: bulkhead.running == 1)
            for _ in range(3):
                with pytest.raises(ServiceUnavailable):
                    await bulkhead.run(gate.call)
            fake_time.now += 10.0
            with pytest.raises(ServiceUnavailable):
                await bulkhead.run(gate.call)
            gate.open()
    finally:
        gate.open()
    lines = [r.msg for r in log_records.records if r.name == "lastro.bulkhead"]
    assert all(isinstance(line, dict) for line in lines)  # structlog hands logging the event as a dict
    assert [(line["event"], line["level"], line["refused"]) for line in lines] == [  # type: ignore[index]
        ("bulkhead full", "warning", 1),
        ("bulkhead full", "warning", 3),
    ]


async def test_a_cancelled_caller_keeps_its_slot_until_its_call_is_done(
    bulkheads: Callable[..., Bulkhead],
) -> None:
    """Cancelling the caller does not free the slot while its thread still runs the call."""
    bulkhead = bulkheads("test", capacity=1, wait=0)
    gate = Gate()
    caller = anyio.CancelScope()

    async def call() -> None:
        with caller:
            await bulkhead.run(gate.call)

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call)
            await until(lambda: gate.active == 1)
            caller.cancel()
            await until(lambda: caller.cancel_called)
            with pytest.raises(ServiceUnavailable):
                await bulkhead.run(gate.call)
            gate.open()
    finally:
        gate.open()
    assert bulkhead.running == 0
    assert gate.most_active == 1


@pytest.mark.skipif(sys.platform != "linux", reason="niceness is per thread on Linux only")
async def test_nice_lowers_the_priority_of_the_bulkheads_threads_only(
    bulkheads: Callable[..., Bulkhead],
) -> None:
    """With nice=5 the calls run 5 steps nicer than the caller's thread, whose priority is unchanged."""
    bulkhead = bulkheads("test", capacity=1, wait=0, nice=5)
    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    inside = await bulkhead.run(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    assert inside == min(caller + 5, 19)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller
    default_thread = await anyio.to_thread.run_sync(os.getpriority, os.PRIO_PROCESS, 0)
    assert default_thread == caller


@pytest.mark.parametrize(("capacity", "wait"), [(0, 1.0), (1, -1.0)])
async def test_a_bulkhead_needs_a_slot_and_a_wait_of_zero_or_more(capacity: int, wait: float) -> None:
    """A capacity below 1 or a negative wait is a programming error, said at once."""
    with pytest.raises(ValueError, match="a bulkhead"):
        Bulkhead("test", capacity=capacity, wait=wait)
