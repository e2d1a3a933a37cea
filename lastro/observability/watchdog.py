"""A worker whose event loop stops turning for `TIMEOUT` seconds says where it is stuck, then exits.

uvicorn's supervisor pings each worker over a pipe, but the answer comes from a thread of its own: a
worker whose event loop is held (a blocking call or CPU-bound code in an `async def` handler) still
answers while it serves nothing. Here a timer on the loop sets a heartbeat every `interval`, and a thread
looks at it as often: once the heartbeat is `timeout` seconds overdue, no loop iteration has started for
that long. The thread then logs one error line with the Python stack of the loop's thread and the
requests the worker holds, and ends the process: a held loop cannot be interrupted from outside, and a
fresh worker serves. lastro's supervisor (or uvicorn's, or the process manager under plain uvicorn)
starts the replacement. The cost on the loop is one timer callback per `interval` (at most a second).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lastro.observability.logging import get_logger
from lastro.observability.requests import requests_in_flight

__all__ = ["WATCHDOG_EXIT_CODE", "LoopWatchdog", "Stall", "exit_on_stall"]

logger = get_logger("lastro.watchdog")

WATCHDOG_EXIT_CODE = 70  # EX_SOFTWARE; uvicorn's STARTUP_FAILURE (3) would stop the whole supervisor
_LOG_DEADLINE = 5.0  # seconds the report may take (a held logging lock, a full pipe) before exiting anyway


@dataclass(frozen=True)
class Stall:
    """What the watchdog saw: how long the loop has not turned, where its thread is, what it was serving."""

    blocked_seconds: float
    timeout: float
    stack: str
    requests: list[dict[str, Any]]


def exit_on_stall(stall: Stall) -> None:
    """Log the stall as one line and end the process, so that the supervisor starts a fresh worker."""
    threading.Timer(_LOG_DEADLINE, os._exit, (WATCHDOG_EXIT_CODE,)).start()
    logger.error(
        "event loop blocked, worker exits",
        blocked_seconds=round(stall.blocked_seconds, 3),
        timeout=stall.timeout,
        requests=stall.requests,
        stack=stall.stack,
        exit_code=WATCHDOG_EXIT_CODE,
    )
    os._exit(WATCHDOG_EXIT_CODE)


class LoopWatchdog:
    """A heartbeat on the running event loop and a thread that calls `on_stall` when it stops."""

    def __init__(
        self,
        timeout: float,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_stall: Callable[[Stall], None] = exit_on_stall,
    ) -> None:
        self.timeout = timeout
        self.interval = interval if interval is not None else min(1.0, timeout / 8)
        self.clock = clock
        self.on_stall = on_stall
        self._due = clock() + self.interval
        self._loop_thread = threading.get_ident()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        """Beat on the running loop and watch it from a thread until `stop()`."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._tick()
        threading.Thread(target=self._watch, name="lastro-loop-watchdog", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __enter__(self) -> LoopWatchdog:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def beat(self) -> None:
        """The loop has turned: the next heartbeat is due one interval from now."""
        self._due = self.clock() + self.interval

    def check(self) -> bool:
        """Call `on_stall` and return True if the heartbeat is `timeout` seconds overdue."""
        blocked = self.clock() - self._due
        if blocked < self.timeout or self._stopped.is_set():
            return False
        self.on_stall(Stall(blocked, self.timeout, self._loop_stack(), requests_in_flight()))
        return True

    def _tick(self) -> None:
        self.beat()
        if self._loop is not None and not self._stopped.is_set():
            self._timer = self._loop.call_later(self.interval, self._tick)

    def _watch(self) -> None:
        while not self._stopped.wait(self.interval):
            if self.check():
                return

    def _loop_stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        return "".join(traceback.format_stack(frame)) if frame is not None else ""
