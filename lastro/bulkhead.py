"""Bulkheads: a fixed number of threads for a heavy blocking call, and a fast 503 beyond them.

```python
hashing = lastro.Bulkhead("password hashing", capacity=os.cpu_count() or 1, wait=1.0, nice=10)
digest = await hashing.run(hasher.hash, password)   # raises ServiceUnavailable (503) when full
hashing.close()                                     # at shutdown
```

Blocking calls that are CPU- or memory-heavy (password hashing, image decoding) must not run on anyio's
default thread limiter: it allows 40 threads, so a burst of them multiplies their memory by 40 and leaves
no thread for the database or the health checks that share it. A bulkhead runs its calls on threads of
its own, at most `capacity` at a time. A caller that finds it full waits at most `wait` seconds for a
slot, first come first served, and is then refused with `ServiceUnavailable` (503 with `Retry-After`):
beyond what the machine can compute in time, a quick refusal serves the client better than a queue.

With `nice`, the bulkhead's threads run at a lower CPU priority than the rest of the worker (Linux, where
niceness is per thread). The event loop then keeps the CPU it needs for probes and other routes while the
bulkhead is busy: the bulkhead's work is what there is too much of. The threads are the bulkhead's own, so
no other call ever runs at the lowered priority (an unprivileged thread cannot raise its priority again).

Refusals are logged as `bulkhead full`, at most once per `log_interval` seconds, with how many were
refused since the last line, so a flood costs a few log lines rather than one per request.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import ParamSpec, TypeVar

import anyio

from lastro.errors import ServiceUnavailable
from lastro.observability.logging import get_logger
from lastro.observability.throttle import LogThrottle

__all__ = ["Bulkhead"]

P = ParamSpec("P")
T = TypeVar("T")

logger = get_logger("lastro.bulkhead")


class Bulkhead:
    """At most `capacity` calls of `run` at once, on threads of their own; a bounded wait for the rest.

    Create it where the event loop runs (in a lifespan), since its limiter belongs to one loop, and
    `close()` it when the service stops.
    """

    def __init__(
        self,
        name: str,
        capacity: int,
        wait: float,
        *,
        nice: int = 0,
        retry_after: int = 1,
        log_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"a bulkhead needs a capacity of at least 1, not {capacity}")
        if wait < 0:
            raise ValueError(f"a bulkhead's wait cannot be negative, not {wait}")
        self.name = name
        self.capacity = capacity
        self.wait = wait
        self.retry_after = retry_after
        self.rejected = 0  # refusals since the bulkhead was created
        self._log = LogThrottle(log_interval, clock=clock)
        self._slots = anyio.CapacityLimiter(capacity)
        # As many threads as slots: a call that holds a slot never waits for a thread.
        self._threads = ThreadPoolExecutor(
            capacity, thread_name_prefix=f"bulkhead {name}", initializer=_lower_priority, initargs=(nice,)
        )

    @property
    def running(self) -> int:
        """Calls holding a slot right now."""
        return int(self._slots.borrowed_tokens)

    @property
    def waiting(self) -> int:
        """Callers waiting for a slot right now."""
        return self._slots.statistics().tasks_waiting

    def statistics(self) -> dict[str, int | float]:
        """What `/health` shows of the bulkhead."""
        return {
            "capacity": self.capacity,
            "running": self.running,
            "waiting": self.waiting,
            "rejected": self.rejected,
        }

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args, **kwargs)` in one of the bulkhead's threads; 503 if no slot frees in time."""
        await self._admit()
        try:
            done = asyncio.wrap_future(self._threads.submit(function, *args, **kwargs))
            # A cancelled caller keeps its slot until its thread is done, or more would run than `capacity`.
            with anyio.CancelScope(shield=True):
                result = await done
            return result
        finally:
            self._slots.release()

    def close(self) -> None:
        """Stop the threads once the calls in progress are done; `run` fails after this."""
        self._threads.shutdown(wait=False)

    async def _admit(self) -> None:
        try:
            self._slots.acquire_nowait()
            return
        except anyio.WouldBlock:
            pass
        if self.wait > 0:
            with anyio.move_on_after(self.wait):
                await self._slots.acquire()
                return
        self._refuse()

    def _refuse(self) -> None:
        self.rejected += 1
        not_logged = self._log.admit("full")
        if not_logged is not None:
            logger.warning(
                "bulkhead full",
                bulkhead=self.name,
                capacity=self.capacity,
                wait=self.wait,
                refused=not_logged + 1,
                refused_total=self.rejected,
            )
        raise ServiceUnavailable(
            f"{self.name} is at its capacity of {self.capacity} and no slot freed within {self.wait:g} s",
            retry_after=self.retry_after,
        )


def _lower_priority(nice: int) -> None:
    # Linux alone takes a thread id as PRIO_PROCESS for that one thread; elsewhere it would name a process.
    if nice > 0 and sys.platform == "linux":
        thread = threading.get_native_id()
        with suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + nice)
