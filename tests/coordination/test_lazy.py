"""`LazyLoader`: one load at a time, the value kept (for `ttl`), failures not kept, `reset()`."""

from __future__ import annotations

import asyncio

import pytest

from lastro.coordination.lazy import LazyLoader
from tests.support.clock import FakeTime, settle

pytestmark = pytest.mark.anyio


class Source:
    """A load that counts its calls, waits while `held`, and fails while `failing`."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = False
        self.held = asyncio.Event()
        self.held.set()

    async def __call__(self) -> str:
        self.calls += 1
        await self.held.wait()
        if self.failing:
            raise OSError("model file missing")
        return f"value {self.calls}"


async def test_the_first_get_loads_and_later_ones_reuse_the_value() -> None:
    """`load` runs once; every later `get()` returns the kept value."""
    source = Source()
    loader = LazyLoader(source, name="model")
    assert not loader.loaded
    assert await loader.get() == "value 1"
    assert await loader.get() == "value 1"
    assert source.calls == 1
    assert loader.loaded


async def test_concurrent_first_callers_share_one_load() -> None:
    """Callers arriving while the load runs await that load instead of starting their own."""
    source = Source()
    source.held.clear()
    loader = LazyLoader(source)
    callers = [asyncio.create_task(loader.get()) for _ in range(10)]
    await settle()
    source.held.set()
    assert await asyncio.gather(*callers) == ["value 1"] * 10
    assert source.calls == 1


async def test_a_failed_load_is_not_kept() -> None:
    """Every waiter of a failed load sees its error; the next `get()` loads again."""
    source = Source()
    source.failing = True
    loader = LazyLoader(source)
    with pytest.raises(OSError, match="model file missing"):
        await loader.get()
    source.failing = False
    assert await loader.get() == "value 2"
    assert loader.statistics()["failures"] == 1
    assert loader.statistics()["last_error"] == "OSError: model file missing"


async def test_the_value_expires_after_ttl() -> None:
    """With `ttl`, a value that old is loaded again; a younger one is not."""
    time, source = FakeTime(), Source()
    loader = LazyLoader(source, ttl=60.0, clock=time.clock)
    assert await loader.get() == "value 1"
    time.now += 59.9
    assert await loader.get() == "value 1"
    time.now += 0.1
    assert not loader.loaded
    assert await loader.get() == "value 2"


async def test_reset_forgets_the_value() -> None:
    """After `reset()` the next `get()` loads again."""
    source = Source()
    loader = LazyLoader(source)
    await loader.get()
    loader.reset()
    assert not loader.loaded
    assert await loader.get() == "value 2"


async def test_a_load_running_during_reset_is_not_kept() -> None:
    """A value loaded from before `reset()` is given to its waiters but not kept."""
    source = Source()
    source.held.clear()
    loader = LazyLoader(source)
    first = asyncio.create_task(loader.get())
    await settle()
    loader.reset()
    source.held.set()
    assert await first == "value 1"
    assert not loader.loaded
    assert await loader.get() == "value 2"


async def test_a_cancelled_caller_does_not_cancel_the_load() -> None:
    """One caller giving up leaves the load running for the others."""
    source = Source()
    source.held.clear()
    loader = LazyLoader(source)
    leaving = asyncio.create_task(loader.get())
    staying = asyncio.create_task(loader.get())
    await settle()
    leaving.cancel()
    await settle()
    source.held.set()
    assert await staying == "value 1"
    assert source.calls == 1


async def test_blocking_runs_a_blocking_load_on_a_thread() -> None:
    """`LazyLoader.blocking` takes a plain function and keeps its result like any other load."""
    calls: list[int] = []

    def load() -> int:
        calls.append(1)
        return 42

    loader = LazyLoader.blocking(load, name="answer")
    assert await loader.get() == 42
    assert await loader.get() == 42
    assert calls == [1]
