"""Cut a request whose handler runs longer than `REQUEST_TIMEOUT`: the client gets 504 problem+json.

The handler is cancelled where it awaits, so its dependencies unwind (a unit of work rolls back) and the
layers around this one (the in-flight count) get their slot back. If the response had already started,
a status can no longer be sent: the connection is closed on the incomplete response instead. Time spent
waiting for the request body does not count: `BODY_TIMEOUT` governs that. Work already handed to a
thread (a `def` route) is not stopped: the client gets its 504 at once and the thread runs on to its
end. SQLite reads run on the event loop itself, so nothing here can cut them.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastro.http.problem import send_problem
from lastro.observability.logging import get_logger
from lastro.observability.requests import route_template

__all__ = ["RequestTimeoutMiddleware"]

logger = get_logger("lastro.http")


class RequestTimeoutMiddleware:
    def __init__(self, app: ASGIApp, *, timeout: float) -> None:
        self.app = app
        self.timeout = timeout
        self.detail = f"the request took longer than {timeout:g} s (REQUEST_TIMEOUT)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.timeout:
            await self.app(scope, receive, send)
            return
        started = False

        async def track(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        timer = asyncio.timeout(self.timeout)
        try:
            async with timer:
                await self.app(scope, _untimed_body(receive, timer), track)
        except TimeoutError:
            if not timer.expired():
                raise
            logger.warning(
                "request timed out",
                method=scope["method"],
                path=scope["path"],
                route=route_template(scope),
                seconds=self.timeout,
                response_started=started,
            )
            if not started:
                await send_problem(send, 504, self.detail)
            # Otherwise returning mid-response makes the server close the connection.


def _untimed_body(receive: Receive, timer: asyncio.Timeout) -> Receive:
    """`receive` with the deadline held still while the body is awaited."""
    body_done = False

    async def receive_untimed() -> Message:
        nonlocal body_done
        deadline = timer.when()
        if body_done or deadline is None:
            return await receive()
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        timer.reschedule(None)
        try:
            message = await receive()
        finally:
            timer.reschedule(loop.time() + remaining)
        if message["type"] != "http.request" or not message.get("more_body", False):
            body_done = True
        return message

    return receive_untimed
