"""Background tasks a service runs beside its requests, with their status for `/health`.

Each task is started by name; it is restarted with backoff when it fails, and cancelled in reverse order
of start at shutdown, each step logged. A restarted task that then runs `healthy_after` seconds without
failing has its failures forgotten: the next failure backs off from the start again, and the status shows
0 failures (the clock is injected, for the tests).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from lastro.errors import one_line_with_type
from lastro.observability.logging import get_logger

__all__ = ["BackgroundTasks", "TaskStatus"]

logger = get_logger("lastro.tasks")

TaskFactory = Callable[[], Awaitable[None]]
TaskState = Literal["running", "restarting", "stopped", "finished"]


@dataclass
class TaskStatus:
    name: str
    state: TaskState = "running"
    failures: int = 0
    last_error: str | None = None
    running_since: float | None = None  # when its current run began

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "failures": self.failures, "last_error": self.last_error}


@dataclass
class _Entry:
    status: TaskStatus
    task: asyncio.Task[None] = field(repr=False)


class BackgroundTasks:
    """Named long-running coroutines owned by the service's lifespan."""

    def __init__(
        self,
        *,
        max_backoff: float = 60.0,
        healthy_after: float = 300.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: dict[str, _Entry] = {}
        self.max_backoff = max_backoff
        self.healthy_after = healthy_after
        self._sleep = sleep
        self._clock = clock

    def start(self, name: str, factory: TaskFactory) -> None:
        if name in self._entries:
            raise ValueError(f"a background task named {name!r} is already running")
        status = TaskStatus(name)
        task = asyncio.create_task(self._supervise(status, factory), name=f"lastro:{name}")
        self._entries[name] = _Entry(status, task)
        logger.info("background task started", task=name)

    async def _supervise(self, status: TaskStatus, factory: TaskFactory) -> None:
        while True:
            status.running_since = self._clock()
            try:
                await factory()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._forget_old_failures(status)
                status.failures += 1
                status.last_error = one_line_with_type(exc)
                status.state = "restarting"
                # The exponent is capped: 2.0 ** 1024 overflows, which would end the supervision for good.
                delay = min(2.0 ** min(status.failures - 1, 64), self.max_backoff)
                logger.exception("background task failed", task=status.name, retry_in_s=delay)
                await self._sleep(delay)
                status.state = "running"
            else:
                status.state = "finished"
                return

    def _forget_old_failures(self, status: TaskStatus) -> None:
        """A task that has run `healthy_after` seconds since its last restart starts its count again."""
        since = status.running_since
        if status.failures and since is not None and self._clock() - since >= self.healthy_after:
            status.failures = 0

    def statuses(self) -> dict[str, dict[str, object]]:
        for entry in self._entries.values():
            if entry.status.state == "running":
                self._forget_old_failures(entry.status)
        return {name: entry.status.as_dict() for name, entry in self._entries.items()}

    @property
    def healthy(self) -> bool:
        return all(entry.status.state != "restarting" for entry in self._entries.values())

    async def stop(self, grace: float = 10.0) -> None:
        """Cancel every task, newest first, waiting up to `grace` seconds for each."""
        for name, entry in reversed(self._entries.items()):
            entry.task.cancel()
            try:
                async with asyncio.timeout(grace):  # not wait_for, which can lose a cancellation on 3.11
                    await asyncio.shield(entry.task)
            except asyncio.CancelledError:
                pass
            except TimeoutError:
                logger.error("background task did not stop in time", task=name, timeout_s=grace)
            entry.status.state = "stopped"
            logger.info("background task stopped", task=name)
        self._entries.clear()
