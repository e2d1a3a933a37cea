"""Cut a request whose handler runs longer than `REQUEST_TIMEOUT`: the client gets 504 problem+json.

The handler is cancelled where it awaits, so its dependencies unwind (a unit of work rolls back) and the
layers around this one (the in-flight count) get their slot back. If the response had already started,
a status can no longer be sent: the connection is closed on the incomplete response instead. Time spent
waiting for the request body does not count: `BODY_TIMEOUT` governs that. Work already handed to a
thread (a `def` route) is not stopped: the client gets its 504 at once and the thread runs on to its
end. SQLite reads run on the event loop itself, so nothing here can cut them.

One timer per worker, not one per request: every request notes its deadline in a dict, and a sweep every
`timeout / 4` seconds (at most 1 s) cancels those past it. A request is cut at most that much late, and
costs a dict write and a delete instead of a timer scheduled and cancelled.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastro.http.problem import send_problem
from lastro.http.response_status import recording_status, response_status
from lastro.observability.logging import get_logger
from lastro.observability.requests import route_template

__all__ = ["RequestTimeoutMiddleware"]

logger = get_logger("lastro.http")

PAUSED = float("inf")  # the deadline of a request waiting for its body


class RequestTimeoutMiddleware:
    def __init__(self, app: ASGIApp, *, timeout: float) -> None:
        self.app = app
        self.timeout = timeout
        self.interval = min(timeout / 4, 1.0)
        self.detail = f"the request took longer than {timeout:g} s (REQUEST_TIMEOUT)"
        self.deadlines: dict[asyncio.Task[object], float] = {}
        self.cut: set[asyncio.Task[object]] = set()  # cancelled by the sweep, not yet seen to end
        self._sweep_loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.timeout:
            await self.app(scope, receive, send)
            return
        task: asyncio.Task[object] = asyncio.current_task()  # type: ignore[assignment]
        loop = task.get_loop()
        if self._sweep_loop is not loop:
            self._sweep_loop = loop
            loop.call_later(self.interval, self._sweep, loop)
        cancelling = task.cancelling()
        self.deadlines[task] = loop.time() + self.timeout
        timed_out = False
        try:
            await self.app(scope, self._untimed_body(receive, task, loop), recording_status(scope, send))
        except asyncio.CancelledError:
            if task not in self.cut:
                raise
            self.cut.discard(task)
            if task.uncancel() > cancelling:
                raise  # cancelled by someone else too (shutdown, a client gone)
            timed_out = True
        finally:
            # Out of the sweep before anything else is awaited: the 504 below is not cut again.
            del self.deadlines[task]
            if task in self.cut:  # cancelled, but the handler swallowed it and went on
                self.cut.discard(task)
                task.uncancel()
        if timed_out:
            started = response_status(scope) is not None
            self._timed_out(scope, started)
            if not started:
                await send_problem(send, 504, self.detail)
            # Otherwise returning mid-response makes the server close the connection.

    def sweep(self, now: float) -> None:
        """Cut every request whose deadline is `now` (the event loop's time) or earlier."""
        for task, deadline in self.deadlines.items():
            if deadline <= now and task not in self.cut:
                self.cut.add(task)
                task.cancel()

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._sweep_loop or loop.is_closed():
            return  # a later loop has its own sweep
        self.sweep(loop.time())
        loop.call_later(self.interval, self._sweep, loop)

    def _untimed_body(
        self, receive: Receive, task: asyncio.Task[object], loop: asyncio.AbstractEventLoop
    ) -> Receive:
        """`receive` with the request's deadline held still while the body is awaited."""
        body_done = False
        deadlines = self.deadlines

        async def receive_untimed() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            remaining = deadlines[task] - loop.time()
            deadlines[task] = PAUSED
            try:
                message = await receive()
            finally:
                deadlines[task] = loop.time() + remaining
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        return receive_untimed

    def _timed_out(self, scope: Scope, started: bool) -> None:
        logger.warning(
            "request timed out",
            method=scope["method"],
            path=scope["path"],
            route=route_template(scope),
            seconds=self.timeout,
            response_started=started,
        )
