"""`BoundedAttempt`: a unit of work running in a thread, which the coroutine waiting for it may give up on.

The network can stop answering without closing anything (a partition, a stuck proxy): the thread then
waits in the driver for as long as the outage lasts, and TCP keepalives cannot tell when the peer's kernel
still acknowledges. So the coroutine waits only until the unit's deadline, then *abandons* the attempt:

- before `COMMIT` was sent, abandoning means *not applied*: the thread sees the flag where it would
  commit, and rolls back instead;
- once `COMMIT` is on its way, nobody can know from here whether it was applied: the caller says so
  (`CommitOutcomeUnknown`) instead of guessing.

Either way the socket of the connection in use is shut down (not closed: the thread still owns the file
descriptor), so the driver wakes at once with a connection error and the thread and the pool slot are
freed, instead of waiting for the network to come back.
"""

from __future__ import annotations

import asyncio
import enum
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from lastro.db.sockets import shut_down

__all__ = ["Abandoned", "BoundedAttempt", "TimedOut", "wait_for_attempt"]

T = TypeVar("T")


class Abandoned(Exception):
    """The coroutine gave up on this attempt before its COMMIT was sent; nothing was applied."""


class TimedOut(Exception):
    """The coroutine stopped waiting at the deadline and abandoned the attempt."""

    def __init__(self, never_committed: bool) -> None:
        super().__init__("the attempt did not finish before its deadline")
        self.never_committed = never_committed  # its COMMIT was never sent: certainly not applied


class _State(enum.Enum):
    RUNNING = "running"
    COMMITTING = "committing"
    ABANDONED = "abandoned"


class BoundedAttempt:
    """Shared by the thread that runs one attempt and the coroutine that waits for it, until `deadline`."""

    def __init__(self, deadline: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.deadline = deadline
        self.connected = False  # a connection was made or checked out: a later failure is a dropped one
        self._clock = clock
        self._lock = threading.Lock()
        self._state = _State.RUNNING
        self._socket: int | None = None

    def remaining(self) -> float:
        return max(0.0, self.deadline - self._clock())

    @property
    def abandoned(self) -> bool:
        return self._state is _State.ABANDONED

    def attach(self, fd: int) -> None:
        """The thread now waits on this socket: abandoning the attempt shuts it down."""
        with self._lock:
            self._socket = fd
            if self._state is _State.ABANDONED:
                shut_down(fd)

    def detach(self) -> None:
        """The thread is done with the socket (back to the pool, or closed): never touch it again."""
        with self._lock:
            self._socket = None

    def begin_commit(self) -> bool:
        """Called right before COMMIT: False if the attempt was abandoned, and then it must roll back."""
        with self._lock:
            if self._state is _State.ABANDONED:
                return False
            self._state = _State.COMMITTING
            return True

    def abandon(self) -> bool:
        """Give up on the attempt; True if its COMMIT was never sent, so it certainly was not applied."""
        with self._lock:
            never_committed = self._state is _State.RUNNING
            self._state = _State.ABANDONED
            if self._socket is not None:
                shut_down(self._socket)
        return never_committed


async def wait_for_attempt(future: asyncio.Future[T], bounded: BoundedAttempt) -> T:
    """`future`'s result, awaited until `bounded`'s deadline; then the attempt is abandoned.

    `future` is the attempt's own, settled from its thread only while it is not done yet
    (`lastro.db.threads`): at the deadline it ends with `TimedOut` here, and the thread's late outcome is
    dropped. No `asyncio.timeout` and `shield` around it: their futures and callbacks cost a unit more than
    the timer does (benchmarks/RESULTS.md, "One hand-off each way").
    """
    timer = asyncio.get_running_loop().call_later(bounded.remaining(), _expire, future, bounded)
    try:
        return await future
    except asyncio.CancelledError:
        # The waiter itself was cancelled (REQUEST_TIMEOUT, shutdown), which cancelled the attempt's future
        # unless it had finished: nobody will read the outcome, so the attempt is abandoned as at its
        # deadline, and rolls back unless its COMMIT was sent.
        if future.cancelled():
            bounded.abandon()
        raise
    finally:
        timer.cancel()


def _expire(future: asyncio.Future[Any], bounded: BoundedAttempt) -> None:
    if not future.done():
        future.set_exception(TimedOut(bounded.abandon()))
