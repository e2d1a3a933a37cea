"""`UnitThreads`: the threads that run blocking units of work for an event loop, with one hand-off each way.

`loop.run_in_executor` on a `ThreadPoolExecutor` pays for more than the hop: a `concurrent.futures.Future`
(its condition and lock), the executor's idle semaphore, and `asyncio.wrap_future`'s chaining of that future
to an asyncio one through done-callbacks. Here the loop puts the call on a queue with an asyncio future, a
thread runs it, and one `call_soon_threadsafe` settles the future on the loop: under load, a fifth of the
CPU a hop took (benchmarks/RESULTS.md, "One hand-off each way").

The same semantics as `run_in_executor`:
- the call runs without the caller's context variables;
- a call whose future was cancelled before a thread took it does not run; one already running finishes,
  and its outcome is dropped;
- `shutdown` cancels the calls still queued and waits for the running ones.

Each thread runs `on_exit` as it stops, to hand back what it kept between calls (a database connection).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from typing import Any, ParamSpec, TypeVar

__all__ = ["UnitThreads", "settle_threadsafe"]

P = ParamSpec("P")
T = TypeVar("T")

_Call = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class UnitThreads:
    """`size` threads named `name_N` (as `ThreadPoolExecutor` names them), all started by the first call:
    a thread waiting on the queue costs nothing, and deciding whether to start one would cost each call a
    lock."""

    def __init__(self, size: int, name: str, *, on_exit: Callable[[], object] | None = None) -> None:
        if size < 1:
            raise ValueError(f"UnitThreads needs at least one thread, got {size}")
        self.size = size
        self.name = name
        self._on_exit = on_exit
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._closed = False

    def submit(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """`function(*args, **kwargs)` on one of the threads; its future, on the running loop."""
        if self._closed:
            raise RuntimeError(f"the {self.name} threads are shut down")
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        call = function if not kwargs else partial(function, **kwargs)
        self._queue.put((call, args, loop, future))
        return future

    def has_queued(self) -> bool:
        """Whether a call waits for a thread: from a thread that just finished one, more are coming."""
        return not self._queue.empty()

    def shutdown(self, wait: bool = True) -> None:
        """Cancel the calls still queued, let the running ones finish, stop the threads."""
        with self._start_lock:
            self._closed = True
            threads = list(self._threads)
        while True:
            try:
                call = self._queue.get_nowait()
            except queue.Empty:
                break
            if call is not None:
                with suppress(RuntimeError):  # the loop is closed
                    call[2].call_soon_threadsafe(call[3].cancel)
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()

    def _start(self) -> None:
        with self._start_lock:
            if self._threads or self._closed:
                return
            for index in range(self.size):
                thread = threading.Thread(target=self._serve, name=f"{self.name}_{index}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        try:
            while (call := self._queue.get()) is not None:
                function, args, loop, future = call
                if future.cancelled():
                    continue  # cancelled while queued: nobody waits for it
                try:
                    value = function(*args)
                except BaseException as error:  # the waiter's to handle, as with run_in_executor
                    settle_threadsafe(loop, future, False, error)
                else:
                    settle_threadsafe(loop, future, True, value)
        finally:
            if self._on_exit is not None:
                self._on_exit()


def settle_threadsafe(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[T], ok: bool, value: Any
) -> None:
    """From another thread: `future`'s result (`ok`) or exception, set on its loop unless done by then."""
    with suppress(RuntimeError):  # the loop is closed: nobody is left to read it
        loop.call_soon_threadsafe(_settle, future, ok, value)


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return  # cancelled, or abandoned at its deadline, while it ran
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
