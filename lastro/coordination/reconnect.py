"""`Connection`: how a transport's receiving loop tracks its link to the backend, and waits to reopen it.

Each failure doubles the wait before the next attempt, from `initial` up to `cap`; the first success
resets it. The figures (connected, reconnections, the last error) are what `/health` shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from lastro.errors import one_line
from lastro.observability.logging import get_logger

__all__ = ["Connection", "Sleep"]

Sleep = Callable[[float], Awaitable[None]]
logger = get_logger("lastro.events")


class Connection:
    def __init__(
        self, backend: str, *, initial: float = 0.05, cap: float = 2.0, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.backend = backend
        self.initial = initial
        self.cap = cap
        self.sleep = sleep
        self.connected = False
        self.reconnections = 0
        self.last_error: str | None = None
        self.failures = 0  # in a row
        self._ever_connected = False

    def opened(self) -> None:
        """The link is up (again)."""
        if self._ever_connected and not self.connected:
            self.reconnections += 1
            logger.info(
                "event broker reachable again", backend=self.backend, reconnections=self.reconnections
            )
        self.connected = True
        self._ever_connected = True
        self.failures = 0

    def failed(self, error: BaseException) -> float:
        """The link broke (or would not open): record why, and return the wait before the next attempt."""
        if self.connected or self.failures == 0:
            logger.warning("event broker unreachable", backend=self.backend, error=one_line(error))
        self.connected = False
        self.last_error = one_line(error)
        self.failures += 1
        return min(self.initial * 2.0 ** min(self.failures - 1, 32), self.cap)

    async def wait_after(self, error: BaseException) -> None:
        await self.sleep(self.failed(error))

    def statistics(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "reconnections": self.reconnections,
            "last_error": self.last_error,
        }
