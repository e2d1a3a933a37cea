"""`BatchProcessor`: flushes on size, on age and at close; retries in order; back-pressure when full."""

from __future__ import annotations

import asyncio

import pytest

from lastro.coordination.batch import BatchProcessor
from lastro.errors import BatchFull, ServiceUnavailable
from tests.support.clock import ManualTime, settle

pytestmark = pytest.mark.anyio


class Sink:
    """A flush that keeps what it was given; it fails `failing` times first, and waits while `held`."""

    def __init__(self, failing: int = 0) -> None:
        self.batches: list[list[int]] = []
        self.calls = 0
        self.failing = failing
        self.held = asyncio.Event()
        self.held.set()

    async def __call__(self, items: list[int]) -> None:
        self.calls += 1
        await self.held.wait()
        if self.failing:
            self.failing -= 1
            raise ConnectionError("database unreachable")
        self.batches.append(items)

    @property
    def items(self) -> list[int]:
        return [item for batch in self.batches for item in batch]


def processor(sink: Sink, time: ManualTime, **options: float) -> BatchProcessor[int]:
    settings: dict[str, float] = {"batch_size": 10, "max_wait_ms": 500, "max_pending": 100, **options}
    return BatchProcessor(
        sink,
        batch_size=int(settings["batch_size"]),
        max_wait_ms=settings["max_wait_ms"],
        max_pending=int(settings["max_pending"]),
        clock=time.clock,
        sleep=time.sleep,
    )


async def test_a_full_batch_is_flushed_at_once() -> None:
    """`batch_size` items are flushed without waiting for `max_wait_ms`."""
    sink, time = Sink(), ManualTime()
    batch = processor(sink, time)
    batch.start()
    for item in range(10):
        await batch.add(item)
    await settle()
    assert sink.batches == [list(range(10))]
    await batch.close()


async def test_a_partial_batch_is_flushed_after_max_wait() -> None:
    """Fewer than `batch_size` items are flushed once the oldest has waited `max_wait_ms`, not before."""
    sink, time = Sink(), ManualTime()
    batch = processor(sink, time)
    batch.start()
    await batch.add(1)
    await batch.add(2)
    await time.advance(0.499)
    assert sink.batches == []
    await time.advance(0.001)
    assert sink.batches == [[1, 2]]
    await batch.close()


async def test_max_wait_counts_from_the_oldest_item() -> None:
    """An item added later does not push back the flush of one already waiting."""
    sink, time = Sink(), ManualTime()
    batch = processor(sink, time)
    batch.start()
    await batch.add(1)
    await time.advance(0.4)
    await batch.add(2)
    await time.advance(0.1)
    assert sink.batches == [[1, 2]]
    await batch.close()


async def test_close_flushes_everything_pending() -> None:
    """`close()` writes what is queued, in batches of `batch_size`, before it returns."""
    sink, time = Sink(), ManualTime()
    batch = processor(sink, time)
    batch.start()
    for item in range(25):
        await batch.add(item)
    await batch.close()
    assert sink.items == list(range(25))
    assert [len(items) for items in sink.batches] == [10, 10, 5]
    assert batch.pending == 0


async def test_close_flushes_a_processor_never_started() -> None:
    """Items added before `start()` are still written by `close()`."""
    sink, time = Sink(), ManualTime()
    batch = processor(sink, time)
    await batch.add(1)
    await batch.close()
    assert sink.items == [1]


async def test_a_failed_flush_is_retried_in_order_with_capped_backoff() -> None:
    """The same batch is flushed again after 0.1, 0.2, 0.4 … s (at most `retry_max`); nothing is lost."""
    sink, time = Sink(failing=8), ManualTime()
    batch = BatchProcessor(
        sink,
        batch_size=2,
        max_wait_ms=0,
        retry_initial=0.1,
        retry_max=1.0,
        clock=time.clock,
        sleep=time.sleep,
    )
    batch.start()
    for item in range(5):
        await batch.add(item)
    await settle()
    for _ in range(8):
        await time.advance(1.0)
    await batch.close()
    assert sink.items == [0, 1, 2, 3, 4]
    assert time.sleeps[:8] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    assert batch.statistics() == {
        "pending": 0,
        "max_pending": 10_000,
        "flushed": 5,
        "batches": 3,
        "failures": 8,
        "retrying": False,
        "last_error": "ConnectionError: database unreachable",
    }


async def test_add_waits_for_room_when_max_pending_items_wait() -> None:
    """A full processor makes `add` wait until a flush frees room, then queues the item."""
    sink, time = Sink(), ManualTime()
    sink.held.clear()
    batch = processor(sink, time, batch_size=2, max_pending=4)
    batch.start()
    for item in range(4):
        await batch.add(item)
    waiting = asyncio.create_task(batch.add(4))
    await settle()
    assert not waiting.done()
    assert batch.pending == 4
    sink.held.set()
    await asyncio.wait_for(waiting, 5)
    await batch.close()
    assert sink.items == [0, 1, 2, 3, 4]


async def test_add_within_raises_batch_full_once_the_wait_is_over() -> None:
    """With `within`, a full processor refuses after that many seconds with `BatchFull` (a 503)."""
    sink, time = Sink(), ManualTime()
    sink.held.clear()
    batch = processor(sink, time, batch_size=2, max_pending=2)
    batch.start()
    await batch.add(0)
    await batch.add(1)
    refused = asyncio.create_task(batch.add(2, within=1.0))
    await settle()
    await time.advance(0.5)
    assert not refused.done()
    await time.advance(0.5)
    with pytest.raises(BatchFull) as caught:
        await refused
    assert isinstance(caught.value, ServiceUnavailable)
    assert batch.pending == 2
    sink.held.set()
    await batch.close()
    assert sink.items == [0, 1]


async def test_add_after_close_is_refused() -> None:
    """Nothing is queued after `close()`: it would never be written."""
    sink, time = Sink(), ManualTime()
    batch = processor(sink, time)
    await batch.close()
    with pytest.raises(RuntimeError, match="closed"):
        await batch.add(1)


async def test_close_within_gives_up_on_a_flush_that_keeps_failing() -> None:
    """`close(within=…)` returns after that long even if the flush never succeeds; the items stay counted."""
    sink, time = Sink(failing=1_000), ManualTime()
    batch = processor(sink, time)
    batch.start()
    await batch.add(1)
    closing = asyncio.create_task(batch.close(within=5.0))
    for _ in range(10):
        await time.advance(1.0)
    await asyncio.wait_for(closing, 5)
    assert sink.items == []
    assert batch.pending == 1


async def test_concurrent_adds_are_all_flushed_once() -> None:
    """Many producers at once: every item is written exactly once, in the order it was queued."""
    sink, time = Sink(), ManualTime()
    batch = processor(sink, time, batch_size=7, max_pending=20)
    batch.start()
    await asyncio.gather(*(batch.add(item) for item in range(500)))
    await batch.close()
    assert sink.items == list(range(500))


async def test_settings_that_cannot_work_are_refused() -> None:
    """A batch size below 1, or room for less than one batch, is a ValueError at construction."""
    with pytest.raises(ValueError, match="batch_size"):
        BatchProcessor(Sink(), batch_size=0)
    with pytest.raises(ValueError, match="max_pending"):
        BatchProcessor(Sink(), batch_size=10, max_pending=5)


async def test_it_is_an_async_context_manager() -> None:
    """`async with` starts it and closes it, flushing on the way out."""
    sink, time = Sink(), ManualTime()
    async with processor(sink, time) as batch:
        await batch.add(1)
    assert sink.items == [1]
