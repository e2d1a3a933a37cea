"""How late the event loop runs: the wait a ready request has before the worker gets to it.

When handlers hold the loop (CPU-bound `async def` code), requests do not pile up where middleware can
count them: they wait unread in the sockets while the loop works through the ready ones, one at a time.
The loop's lag is what measures that wait. A timer is due every `interval`; the lag is how late it ran
last or, once the loop has turned while the timer was overdue, how overdue it is already: a long block is
seen by the first requests after it, before the timer gets its turn. Requests served in-process back to
back without the loop ever turning (an ASGI test client) never count as lag: nothing waits behind them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["LoopLag"]


class LoopLag:
    def __init__(self, interval: float = 0.05, clock: Callable[[], float] = time.perf_counter) -> None:
        self.interval = interval
        self.clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due: float  # both set by _start, on the first reading
        self._last: float
        # Whether a _turned call is already scheduled: spares scheduling it twice, changes no reading.
        self._turn_pending = False  # pragma: no mutate
        self._turned_while_due: float | None = None

    def current(self) -> float:
        """Seconds the loop is running late, as far as the requests it serves can tell."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._start(loop)
        overdue = self.clock() - self._due
        if overdue <= self._last:
            return self._last
        if self._turned_while_due == self._due:
            return overdue
        if not self._turn_pending:
            self._turn_pending = True  # pragma: no mutate
            loop.call_soon(self._turned, self._due)
        return self._last

    def _turned(self, due: float) -> None:
        self._turn_pending = False  # pragma: no mutate
        self._turned_while_due = due

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._last = 0.0
        self._due = self.clock() + self.interval
        loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        now = self.clock()
        self._last = max(0.0, now - self._due)
        self._due = now + self.interval
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_later(self.interval, self._tick)
