"""Turn an unhandled exception into a 500 problem+json: the traceback goes to the log, never to the client."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastro.http.problem import send_problem
from lastro.observability.logging import get_logger

__all__ = ["ServerErrorMiddleware"]

logger = get_logger("lastro.errors")


class ServerErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def track(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, track)
        except Exception:
            logger.exception("unhandled error", method=scope["method"], path=scope["path"])
            # Once the status line is out, the server closes the connection on the incomplete response.
            if not response_started:
                await send_problem(send, 500, "the server hit an unexpected error; it has been logged")
