"""`BatchProcessor`: items added one at a time, written many at a time; none lost, memory bounded.

```python
audit = lastro.BatchProcessor(insert_entries, batch_size=100, max_wait_ms=500, max_pending=10_000)
audit.start()                         # in the lifespan
await audit.add(entry)                # returns once the entry is queued, not once it is written
await audit.close()                   # at shutdown: returns once every queued entry is written
```

A batch is flushed when `batch_size` items wait, when the oldest has waited `max_wait_ms`, and at
`close()`. One batch is flushed at a time, in the order the items were added. A flush that raises is
retried, the same batch in the same order, after a backoff that doubles from `retry_initial` up to
`retry_max` seconds: the items stay queued until a flush of theirs succeeds, so a flush must be idempotent
(a batch whose write was applied but reported failed is flushed again; give the items ids of their own and
insert with `ON CONFLICT DO NOTHING`).

Memory is bounded by `max_pending`: while that many items are queued (the flush is slower than the adds,
or failing), `add()` waits for room, which slows its callers down rather than dropping anything. With
`within`, it waits at most that many seconds and then raises `BatchFull`, a `ServiceUnavailable`, which a
request answers as 503 with `Retry-After`.

Per worker, with no shared state: items queued in a worker that is killed (SIGKILL, out of memory) are
lost with it. A graceful stop (SIGTERM) runs the lifespan's shutdown, which closes the processor. The
clock and the sleep are injected, so tests move time instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from itertools import islice
from types import TracebackType
from typing import Any, Generic, TypeVar

from lastro.errors import BatchFull, one_line, one_line_with_type
from lastro.observability.logging import get_logger

__all__ = ["BatchProcessor"]

T = TypeVar("T")

logger = get_logger("lastro.batch")


class BatchProcessor(Generic[T]):
    """Queue items with `add()`; `flush(items)` writes them, `batch_size` at most at a time."""

    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[None]],
        *,
        batch_size: int = 100,
        max_wait_ms: float = 500.0,
        max_pending: int = 10_000,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
        name: str = "batch",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"a batch needs a batch_size of at least 1, not {batch_size}")
        if max_pending < batch_size:
            raise ValueError(f"max_pending ({max_pending}) must hold at least one batch ({batch_size})")
        if max_wait_ms < 0 or retry_initial < 0 or retry_max < retry_initial:
            raise ValueError("max_wait_ms and the retry delays must be >= 0, and retry_max >= retry_initial")
        self.name = name
        self.batch_size = batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_pending = max_pending
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.flushed = 0  # items written
        self.batches = 0  # flushes that succeeded
        self.failures = 0  # flushes that raised (each retried)
        self.last_error: str | None = None
        self.retrying = False  # the last flush failed, and its batch waits to be flushed again
        self._flush = flush
        self._clock = clock
        self._sleep = sleep
        self._pending: deque[tuple[float, T]] = deque()  # (added at, item); left until flushed
        self._wake = asyncio.Event()  # the flusher has something new to look at
        self._room = asyncio.Event()  # replaced after each flush: set wakes the adds waiting for room
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def pending(self) -> int:
        """Items added and not yet flushed (the batch being flushed included)."""
        return len(self._pending)

    def statistics(self) -> dict[str, Any]:
        """What `/health` shows of the processor."""
        return {
            "pending": self.pending,
            "max_pending": self.max_pending,
            "flushed": self.flushed,
            "batches": self.batches,
            "failures": self.failures,
            "retrying": self.retrying,
            "last_error": self.last_error,
        }

    def start(self) -> None:
        """Start flushing, on the running event loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"batch {self.name}")

    async def add(self, item: T, *, within: float | None = None) -> None:
        """Queue `item`; while `max_pending` items are queued, wait for room (at most `within` seconds)."""
        if self._closing:
            raise RuntimeError(f"batch processor {self.name!r} is closed")
        if len(self._pending) >= self.max_pending:
            await self._wait_for_room(within)
            if self._task is not None and self._task.done():  # closed while it waited: nothing would flush it
                raise RuntimeError(f"batch processor {self.name!r} is closed")
        self._pending.append((self._clock(), item))
        if len(self._pending) == 1 or len(self._pending) >= self.batch_size:
            self._wake.set()

    async def close(self, *, within: float | None = None) -> None:
        """Flush everything queued, then stop. With `within`, give up after that many seconds and log
        how many items were not written."""
        self._closing = True
        self._wake.set()
        self.start()  # never started: the queued items are flushed all the same
        assert self._task is not None
        if within is None:
            await asyncio.shield(self._task)
        elif not await self._race(self._task, within):
            self._task.cancel()
            logger.error(
                "batch processor closed with items not flushed",
                batch=self.name,
                lost=len(self._pending),
                within=within,
                last_error=self.last_error,
            )

    async def __aenter__(self) -> BatchProcessor[T]:
        self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def _wait_for_room(self, within: float | None) -> None:
        deadline = None if within is None else self._clock() + within
        while len(self._pending) >= self.max_pending:
            room = self._room
            remaining = None if deadline is None else deadline - self._clock()
            if (remaining is not None and remaining <= 0) or not await self._race(room.wait(), remaining):
                raise BatchFull(
                    f"{self.name}: {self.max_pending} items wait to be written and none was written "
                    f"within {within:g} s",
                )

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # cleared before the state is read: no wake-up between the two is lost
            if not self._pending:
                if self._closing:
                    return
                await self._wake.wait()
                continue
            if len(self._pending) < self.batch_size and not self._closing:
                remaining = self._pending[0][0] + self.max_wait - self._clock()
                if remaining > 0:
                    await self._race(self._wake.wait(), remaining)
                    continue
            await self._flush_one()

    async def _flush_one(self) -> None:
        batch = [item for _, item in islice(self._pending, self.batch_size)]
        attempt = 0
        while True:
            try:
                await self._flush(list(batch))
                break
            except Exception as exc:
                self.failures += 1
                self.retrying = True
                self.last_error = one_line_with_type(exc)
                delay = min(self.retry_initial * 2**attempt, self.retry_max)
                attempt += 1
                logger.warning(
                    "batch flush failed, retrying",
                    batch=self.name,
                    items=len(batch),
                    attempt=attempt,
                    retry_in=delay,
                    error=one_line(exc),
                )
                await self._sleep(delay)
        self.retrying = False
        for _ in batch:
            self._pending.popleft()
        self.flushed += len(batch)
        self.batches += 1
        room, self._room = self._room, asyncio.Event()
        room.set()

    async def _race(self, waited: Awaitable[Any], seconds: float | None) -> bool:
        """Whether `waited` finished before `seconds` went by on the injected clock (None: no limit)."""
        waiter = asyncio.ensure_future(waited)
        own = waiter is not waited  # a task passed in is the caller's to cancel
        if seconds is None:
            await (waiter if own else asyncio.shield(waiter))
            return True
        timer = asyncio.ensure_future(_sleeping(self._sleep, seconds))
        try:
            await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
            return waiter.done()
        finally:
            timer.cancel()
            if own and not waiter.done():
                waiter.cancel()


async def _sleeping(sleep: Callable[[float], Awaitable[None]], seconds: float) -> None:
    await sleep(seconds)
