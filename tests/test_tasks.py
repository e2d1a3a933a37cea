"""BackgroundTasks: start by name, restart a crashed task with backoff, report status, stop newest first."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from lastro.observability.logging import configure_logging
from lastro.tasks import BackgroundTasks
from tests.support.clock import FakeTime

pytestmark = pytest.mark.anyio


class Backoff:
    """The `sleep` of BackgroundTasks: records each delay and holds the task until released."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.waiting = asyncio.Event()
        self.gate = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.waiting.set()
        await self.gate.wait()
        self.waiting.clear()


def counting_sleep(
    delays: list[float], enough: int, reached: asyncio.Event
) -> Callable[[float], Awaitable[None]]:
    """A `sleep` that records each delay without waiting, and sets `reached` after `enough` of them."""

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) >= enough:
            reached.set()
        await asyncio.sleep(0)  # yield to the loop, as a real backoff would

    return sleep


def forever(started: asyncio.Event | None = None) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        if started is not None:
            started.set()
        await asyncio.Event().wait()

    return run


async def test_started_task_runs_and_is_reported_running() -> None:
    """A started task runs, and statuses() reports it running with no failure."""
    tasks = BackgroundTasks()
    started = asyncio.Event()
    tasks.start("watcher", forever(started))
    await asyncio.wait_for(started.wait(), 2)
    assert tasks.statuses() == {"watcher": {"state": "running", "failures": 0, "last_error": None}}
    assert tasks.healthy
    await tasks.stop()


async def test_two_tasks_with_one_name_are_refused() -> None:
    """Starting a second task under a running task's name raises ValueError."""
    tasks = BackgroundTasks()
    tasks.start("watcher", forever())
    with pytest.raises(ValueError, match="watcher"):
        tasks.start("watcher", forever())
    await tasks.stop()


async def test_crashed_task_is_reported_restarting_and_unhealthy() -> None:
    """While a crashed task waits to restart, its status holds the error and the tasks are unhealthy."""
    backoff = Backoff()

    async def crash() -> None:
        raise RuntimeError("lost the connection")

    tasks = BackgroundTasks(sleep=backoff)
    tasks.start("sync", crash)
    await asyncio.wait_for(backoff.waiting.wait(), 2)
    assert tasks.statuses()["sync"] == {
        "state": "restarting",
        "failures": 1,
        "last_error": "RuntimeError: lost the connection",
    }
    assert not tasks.healthy
    await tasks.stop()


async def test_crashed_task_is_restarted_and_healthy_again() -> None:
    """After its backoff a crashed task runs again, and the tasks are healthy again."""
    backoff = Backoff()
    runs = 0
    running_again = asyncio.Event()

    async def crash_once() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("first run fails")
        running_again.set()
        await asyncio.Event().wait()

    tasks = BackgroundTasks(sleep=backoff)
    tasks.start("sync", crash_once)
    await asyncio.wait_for(backoff.waiting.wait(), 2)
    backoff.gate.set()
    await asyncio.wait_for(running_again.wait(), 2)
    status = tasks.statuses()["sync"]
    assert (runs, status["state"], status["failures"]) == (2, "running", 1)
    assert status["last_error"] == "RuntimeError: first run fails"
    assert tasks.healthy
    await tasks.stop()


async def test_failures_are_forgotten_once_a_restarted_task_has_run_long_enough() -> None:
    """A task restarted after a crash that then runs `healthy_after` seconds shows 0 failures again."""
    time = FakeTime()
    backoff = Backoff()
    running_again = asyncio.Event()
    runs = 0

    async def crash_once() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("first run fails")
        running_again.set()
        await asyncio.Event().wait()

    tasks = BackgroundTasks(sleep=backoff, clock=time.clock, healthy_after=60)
    tasks.start("sync", crash_once)
    await asyncio.wait_for(backoff.waiting.wait(), 2)
    backoff.gate.set()
    await asyncio.wait_for(running_again.wait(), 2)
    time.now += 59
    assert tasks.statuses()["sync"]["failures"] == 1
    time.now += 1
    assert tasks.statuses()["sync"]["failures"] == 0
    await tasks.stop()


async def test_a_failure_after_a_long_healthy_run_backs_off_from_the_start() -> None:
    """Crashes spaced wider than `healthy_after` each wait the first delay, never a growing one."""
    time = FakeTime()
    delays: list[float] = []
    reached = asyncio.Event()

    async def crash_after_a_while() -> None:
        time.now += 120  # ran two minutes, then failed
        raise RuntimeError("rare")

    sleep = counting_sleep(delays, 4, reached)
    tasks = BackgroundTasks(sleep=sleep, clock=time.clock, healthy_after=60)
    tasks.start("sync", crash_after_a_while)
    await asyncio.wait_for(reached.wait(), 2)
    await tasks.stop()
    assert delays[:4] == [1, 1, 1, 1]


async def test_failures_in_quick_succession_keep_counting() -> None:
    """Crashes closer together than `healthy_after` keep counting and keep backing off."""
    time = FakeTime()
    delays: list[float] = []
    reached = asyncio.Event()

    async def crash_soon() -> None:
        time.now += 5
        raise RuntimeError("again")

    tasks = BackgroundTasks(sleep=counting_sleep(delays, 4, reached), clock=time.clock, healthy_after=60)
    tasks.start("sync", crash_soon)
    await asyncio.wait_for(reached.wait(), 2)
    assert tasks.statuses()["sync"]["failures"] >= 4
    await tasks.stop()
    assert delays[:4] == [1, 2, 4, 8]


async def test_backoff_doubles_up_to_the_maximum() -> None:
    """Successive failures wait 1, 2, 4, ... seconds, capped at max_backoff."""
    delays: list[float] = []
    reached = asyncio.Event()

    async def crash() -> None:
        raise RuntimeError("always")

    tasks = BackgroundTasks(max_backoff=10, sleep=counting_sleep(delays, 6, reached))
    tasks.start("sync", crash)
    await asyncio.wait_for(reached.wait(), 2)
    await tasks.stop()
    assert delays[:6] == [1, 2, 4, 8, 10, 10]


async def test_a_task_failing_for_days_is_still_restarted() -> None:
    """Past 1024 failures the backoff stays at its maximum instead of overflowing and ending supervision."""
    configure_logging("CRITICAL", "json")  # 1100 failure tracebacks are not the point here
    delays: list[float] = []
    reached = asyncio.Event()

    async def crash() -> None:
        raise RuntimeError("always")

    tasks = BackgroundTasks(max_backoff=60, sleep=counting_sleep(delays, 1100, reached))
    tasks.start("sync", crash)
    await asyncio.wait_for(reached.wait(), 5)
    statuses = tasks.statuses()
    await tasks.stop()
    assert delays[-1] == 60
    assert statuses["sync"]["failures"] >= 1100


async def test_failure_is_logged_with_its_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    """A crash writes an error line naming the task, the retry delay and the traceback."""
    configure_logging("INFO", "json")
    backoff = Backoff()

    async def crash() -> None:
        raise RuntimeError("lost the connection")

    tasks = BackgroundTasks(sleep=backoff)
    tasks.start("sync", crash)
    await asyncio.wait_for(backoff.waiting.wait(), 2)
    await tasks.stop()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    failed = next(line for line in lines if line["event"] == "background task failed")
    assert (failed["level"], failed["task"], failed["retry_in_s"]) == ("error", "sync", 1.0)
    assert "RuntimeError: lost the connection" in failed["exception"]


async def test_task_that_returns_is_finished() -> None:
    """A task that returns normally is reported finished, not restarted."""
    calls = 0
    returned = asyncio.Event()

    async def once() -> None:
        nonlocal calls
        calls += 1
        returned.set()  # the supervisor marks the task finished before the test wakes up

    tasks = BackgroundTasks()
    tasks.start("migrate", once)
    await asyncio.wait_for(returned.wait(), 2)
    assert tasks.statuses()["migrate"]["state"] == "finished"
    assert calls == 1
    assert tasks.healthy
    await tasks.stop()


async def test_stop_cancels_newest_first() -> None:
    """stop() cancels the tasks in reverse order of start."""
    cancelled: list[str] = []

    def recording(name: str, started: asyncio.Event) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            finally:
                cancelled.append(name)

        return run

    tasks = BackgroundTasks()
    events = {name: asyncio.Event() for name in ("first", "second", "third")}
    for name, started in events.items():
        tasks.start(name, recording(name, started))
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in events.values())), 2)
    await tasks.stop()
    assert cancelled == ["third", "second", "first"]


async def test_stop_forgets_the_tasks() -> None:
    """After stop() no task is listed and a name can be started again."""
    tasks = BackgroundTasks()
    tasks.start("watcher", forever())
    await tasks.stop()
    assert tasks.statuses() == {}
    tasks.start("watcher", forever())
    await tasks.stop()


async def test_stop_gives_up_on_a_task_after_its_grace(capsys: pytest.CaptureFixture[str]) -> None:
    """A task that ignores cancellation is waited for `grace` seconds only, and that is logged."""
    configure_logging("INFO", "json")
    started, release = asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:
        started.set()
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    tasks = BackgroundTasks()
    tasks.start("stubborn", stubborn)
    await asyncio.wait_for(started.wait(), 2)
    loop = asyncio.get_running_loop()
    begun = loop.time()
    await tasks.stop(grace=0.05)
    elapsed = loop.time() - begun
    release.set()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert elapsed < 1
    assert any(line["event"] == "background task did not stop in time" for line in lines)
