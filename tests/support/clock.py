"""A clock that moves only when told to, and a sleep that records its delays and moves that clock;
`VirtualTime` for several tasks that sleep on one fake clock."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable


class FakeTime:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class VirtualTime(FakeTime):
    """A fake clock shared by several tasks: each `sleep` waits until `run_until` moves the clock past it.

    `run_until` lets every runnable task reach its next sleep, then jumps the clock to the earliest wake:
    loops of several simulated workers interleave as they would in real time, without real waiting.
    """

    def __init__(self, start: float = 1000.0) -> None:
        super().__init__(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = 0

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._count += 1
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), self._count, future))
        await future

    async def run_until(self, condition: Callable[[], object], steps: int = 100_000) -> None:
        for _ in range(steps):
            for _ in range(50):  # the runnable tasks run on to their next sleep
                await asyncio.sleep(0)
            if condition():
                return
            if self._sleepers:
                self.now = max(self.now, self._sleepers[0][0])
            while self._sleepers and self._sleepers[0][0] <= self.now:
                future = heapq.heappop(self._sleepers)[2]
                if not future.done():
                    future.set_result(None)
        raise AssertionError(f"the condition did not hold within {steps} steps of the virtual clock")


class ManualTime:
    """A clock that moves only on `advance()`; `sleep` blocks until the clock has moved past its end.

    For code that races a sleep against something else (a batch's deadline against its filling up):
    with `FakeTime` every sleep would end at once and the race would always go to the sleep.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self.now + seconds, woken))
        try:
            await woken
        finally:
            self._waiters = [(end, waiter) for end, waiter in self._waiters if waiter is not woken]

    async def advance(self, seconds: float) -> None:
        """Move the clock, wake the sleeps that end by then, and let what they wake run."""
        self.now += seconds
        for end, waiter in self._waiters:
            if end <= self.now and not waiter.done():
                waiter.set_result(None)
        await settle()

    @property
    def sleeping(self) -> int:
        """Sleeps still waiting for the clock."""
        return sum(not waiter.done() for _, waiter in self._waiters)


async def settle(rounds: int = 20) -> None:
    """Let every task that can run do so, without real time passing."""
    for _ in range(rounds):
        await asyncio.sleep(0)
