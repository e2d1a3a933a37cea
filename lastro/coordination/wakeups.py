"""`Wakeups`: a wake-up sent soon after it is asked for, once for all the asks while one is on its way.

The PostgreSQL broadcast wakes its listeners with `NOTIFY` after each write unit that published commits
(`lastro.coordination.postgres_events`). A hundred commits a second need not send a hundred: every ask made
while a wake-up is being sent is answered by one more sent after it, which the listeners read all the
events committed by then for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from lastro.errors import one_line
from lastro.observability.logging import get_logger

__all__ = ["Wakeups"]

logger = get_logger("lastro.coordination")


class Wakeups:
    """`soon()` from the event loop runs `send()` in a task: at once if none runs, else once more after it.

    A `send` that raises is logged and not retried: the next ask sends again, and the listeners read on
    their own every few seconds besides. `sent` counts the sends that returned.
    """

    def __init__(self, send: Callable[[], Awaitable[object]], name: str) -> None:
        self.name = name
        self.sent = 0
        self._send = send
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def soon(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
        else:
            self._again = True  # the send on its way may have left before the ask's commit

    async def aclose(self) -> None:
        """Wait for the send on its way, and the one more it owes, if any."""
        task = self._task
        if task is not None:
            await asyncio.shield(task)

    async def _run(self) -> None:
        try:
            while True:
                self._again = False
                try:
                    await self._send()
                    self.sent += 1
                except Exception as error:
                    logger.warning("wake-up not sent", wakeups=self.name, error=one_line(error))
                if not self._again:
                    return
        finally:
            self._task = None
