"""A clock that moves only when told to, and a sleep that records its delays and moves that clock."""

from __future__ import annotations

import asyncio


class FakeTime:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


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
