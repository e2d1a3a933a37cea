"""Give every request an id: accept a well-formed `X-Request-ID`, else generate one; echo it back.

The id is bound in a context variable, so every log line written while serving the request carries it.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["REQUEST_ID_HEADER", "RequestIdMiddleware", "current_request_id"]

REQUEST_ID_HEADER = "x-request-id"
_HEADER_BYTES = REQUEST_ID_HEADER.encode()
# Letters, digits and a few separators: safe to log and to echo, long enough for a UUID or trace id.
_WELL_FORMED = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:\-]{7,127}")

_request_id: ContextVar[str | None] = ContextVar("lastro_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return _request_id.get()


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == _HEADER_BYTES:
            return value.decode("ascii") if _WELL_FORMED.fullmatch(value) else None
    return None


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or os.urandom(16).hex()  # a UUID4's worth of randomness
        _request_id.set(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)

        header = (_HEADER_BYTES, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [item for item in message.get("headers", ()) if item[0].lower() != _HEADER_BYTES]
                headers.append(header)
                message["headers"] = headers
            await send(message)

        # The server runs each request in a task of its own, so the bound id cannot leak to another request.
        await self.app(scope, receive, send_with_id)
