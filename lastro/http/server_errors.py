"""Turn an unhandled exception into a 500 problem+json: the traceback goes to the log, never to the client."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from lastro.http.problem import send_problem
from lastro.http.response_status import recording_status, response_status
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
        try:
            await self.app(scope, receive, recording_status(scope, send))
        except Exception:
            logger.exception("unhandled error", method=scope["method"], path=scope["path"])
            # Once the status line is out, the server closes the connection on the incomplete response.
            if response_status(scope) is None:
                await send_problem(send, 500, "the server hit an unexpected error; it has been logged")
