"""UnitThreads: blocking calls on threads for the event loop, each result settled on the loop once.

Threads are held and released with events, never with sleeps.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator

import pytest

from lastro.db.threads import UnitThreads, settle_threadsafe

pytestmark = pytest.mark.anyio

WAIT = 10.0  # seconds a test waits for a thread before it fails
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


@pytest.fixture
def threads() -> Iterator[UnitThreads]:
    threads = UnitThreads(1, "lastro-test")
    yield threads
    threads.shutdown()


def hold(started: threading.Event, release: threading.Event) -> str:
    started.set()
    assert release.wait(WAIT)
    return "held"


async def test_a_call_runs_on_a_named_thread(threads: UnitThreads) -> None:
    """A call runs on one of the pool's threads, named as ThreadPoolExecutor names them."""
    assert await threads.submit(lambda: threading.current_thread().name) == "lastro-test_0"


async def test_arguments_and_keywords_reach_the_call(threads: UnitThreads) -> None:
    """Positional and keyword arguments are passed through."""
    assert await threads.submit(lambda a, *, b: a + b, 2, b=3) == 5


async def test_an_exception_is_raised_to_the_waiter(threads: UnitThreads) -> None:
    """What the call raises, the waiter gets."""

    def fail() -> None:
        raise LookupError("no such order")

    with pytest.raises(LookupError, match="no such order"):
        await threads.submit(fail)


async def test_a_call_does_not_see_the_callers_context(threads: UnitThreads) -> None:
    """As with run_in_executor, a call runs without the caller's context variables."""
    request_id.set("abc")
    assert await threads.submit(request_id.get) == "none"


async def test_a_call_cancelled_while_queued_does_not_run(threads: UnitThreads) -> None:
    """A call whose waiter gave up before a thread took it never runs."""
    started, release = threading.Event(), threading.Event()
    running = threads.submit(hold, started, release)
    assert await asyncio.to_thread(started.wait, WAIT)
    ran = threading.Event()
    queued = threads.submit(ran.set)
    queued.cancel()
    release.set()
    assert await running == "held"
    assert await threads.submit(lambda: "after") == "after"  # one thread: the cancelled call came before
    assert not ran.is_set()


async def test_the_outcome_of_a_call_cancelled_while_running_is_dropped(threads: UnitThreads) -> None:
    """A call cancelled while it runs finishes, and its outcome is dropped without an error."""
    started, release = threading.Event(), threading.Event()
    running = threads.submit(hold, started, release)
    assert await asyncio.to_thread(started.wait, WAIT)
    running.cancel()
    release.set()
    assert await threads.submit(lambda: "next") == "next"
    assert running.cancelled()


async def test_shutdown_cancels_the_queued_calls() -> None:
    """shutdown() cancels the calls no thread has taken, lets the running one finish, then refuses calls."""
    threads = UnitThreads(1, "lastro-test")
    started, release = threading.Event(), threading.Event()
    running = threads.submit(hold, started, release)
    assert await asyncio.to_thread(started.wait, WAIT)
    ran = threading.Event()
    queued = threads.submit(ran.set)
    threads.shutdown(wait=False)
    release.set()
    assert await running == "held"
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert not ran.is_set()
    with pytest.raises(RuntimeError, match="lastro-test threads are shut down"):
        threads.submit(ran.set)


async def test_shutdown_waits_for_the_running_call() -> None:
    """shutdown(wait=True) returns only once the running call has returned."""
    threads = UnitThreads(1, "lastro-test")
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def call() -> None:
        hold(started, release)
        finished.set()

    threads.submit(call)
    assert await asyncio.to_thread(started.wait, WAIT)
    threading.Timer(0, release.set).start()
    threads.shutdown(wait=True)
    assert finished.is_set()


async def test_calls_share_the_threads(threads: UnitThreads) -> None:
    """More calls than threads all run, each on one of them."""
    names = await asyncio.gather(
        *(threads.submit(lambda: threading.current_thread().name) for _ in range(20))
    )
    assert set(names) == {"lastro-test_0"}


def test_a_pool_needs_a_thread() -> None:
    """A pool of no threads is refused with the size it was given."""
    with pytest.raises(ValueError, match="at least one thread, got 0"):
        UnitThreads(0, "lastro-test")


def test_an_outcome_for_a_closed_loop_is_dropped() -> None:
    """A thread settling a future of a loop that has closed meets no error."""
    loop = asyncio.new_event_loop()
    future: asyncio.Future[str] = loop.create_future()
    loop.close()
    settle_threadsafe(loop, future, True, "late")
    assert not future.done()


async def test_has_queued_tells_whether_a_call_waits_for_a_thread(threads: UnitThreads) -> None:
    """has_queued() is true while a call waits behind the running one, false once none waits."""
    started, release = threading.Event(), threading.Event()
    running = threads.submit(hold, started, release)
    assert await asyncio.to_thread(started.wait, WAIT)
    assert not threads.has_queued()
    queued = threads.submit(lambda: "queued")
    assert threads.has_queued()
    release.set()
    assert (await running, await queued) == ("held", "queued")
    assert not threads.has_queued()


async def test_each_thread_runs_on_exit_as_it_stops() -> None:
    """on_exit runs once on every thread, on that thread, when shutdown stops it."""
    exited: list[str] = []
    threads = UnitThreads(2, "lastro-test", on_exit=lambda: exited.append(threading.current_thread().name))
    await threads.submit(lambda: None)
    assert exited == []
    threads.shutdown(wait=True)
    assert sorted(exited) == ["lastro-test_0", "lastro-test_1"]
