"""Answer 408 to a request whose body arrives too slowly, so a trickling client cannot hold a worker.

The body must arrive within `BODY_TIMEOUT`, extended by one second per `BODY_MIN_RATE` bytes received, as
Apache's mod_reqtimeout does (`body=20,MinRate=500`): a large upload at a fair rate completes, while a
client sending a byte a second loses its request, its `MAX_IN_FLIGHT` slot and its connection once the
deadline passes. The wait is cut inside the application's body read, and the HTTPException raised there is
answered by the application's handlers, as `BodyLimitMiddleware` does: `408` problem+json with
`Connection: close`, so the server closes the connection after the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastro.observability.logging import get_logger
from lastro.observability.throttle import LogThrottle

__all__ = ["BodyTimeout", "BodyTimeoutMiddleware"]

logger = get_logger("lastro.http")
LOG_INTERVAL = 10.0


class BodyTimeout(HTTPException):
    """The request body did not arrive in time; answered 408 and the connection closed."""

    def __init__(self) -> None:
        detail = "the request body did not arrive in time (BODY_TIMEOUT, BODY_MIN_RATE)"
        super().__init__(408, detail, headers={"Connection": "close"})


class BodyTimeoutMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        timeout: float,
        min_rate: int = 0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.app = app
        self.timeout = timeout
        self.min_rate = min_rate
        self.clock = clock
        # A flood of trickling bodies logs a line per interval.
        self._log = LogThrottle(LOG_INTERVAL)  # pragma: no mutate (how often it logs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, self._timed(scope, receive), send)

    def _timed(self, scope: Scope, receive: Receive) -> Receive:
        clock = self.clock or asyncio.get_running_loop().time
        started = clock()
        deadline = started + self.timeout
        received = 0  # pragma: no mutate (for the log line only)
        done = False

        async def timed_receive() -> Message:
            nonlocal deadline, received, done
            if done:  # the body is in: a later receive waits for the disconnect, for as long as it takes
                return await receive()
            try:
                # Past the deadline, a body already buffered is still returned: only waiting is cut.
                async with asyncio.timeout(max(deadline - clock(), 0.0)):
                    message = await receive()
            except TimeoutError:
                if (not_logged := self._log.admit("body timeout")) is not None:  # pragma: no mutate
                    logger.warning(
                        "request body timed out",
                        method=scope["method"],
                        path=scope["path"],
                        received_bytes=received,
                        seconds=round(clock() - started, 3),
                        not_logged_since_last=not_logged,
                    )
                raise BodyTimeout() from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            chunk = len(message.get("body", b""))
            received += chunk  # pragma: no mutate (for the log line only)
            if self.min_rate:
                deadline += chunk / self.min_rate
            return message

        return timed_receive
