"""Refuse request bodies over a size limit with 413, before they are read into memory or spooled to disk.

A declared `Content-Length` over the limit is refused at once, with `Connection: close`: the server drops
the connection rather than read the declared rest (a client that sent `Expect: 100-continue` has sent
none of it). A body sent without one (chunked) is counted as it arrives; once it crosses the limit, what
follows is read and dropped for a little while (`drain_bytes`, `drain_seconds`) so that a client still
sending gets its 413 on a connection that stays usable. A body longer than that gets the 413 with
`Connection: close`.
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastro.http.problem import send_problem

__all__ = ["BodyLimitMiddleware"]

CLOSE = {"Connection": "close"}
DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 2.0


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        drain_bytes: int = DRAIN_BYTES,
        drain_seconds: float = DRAIN_SECONDS,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.drain_bytes = drain_bytes
        self.drain_seconds = drain_seconds
        self.detail = f"the request body is larger than {max_body_bytes} bytes (MAX_BODY_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await send_problem(send, 413, self.detail, headers=CLOSE)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    unread = message.get("more_body", False) and not await self._drained(receive)
                    # Raised inside the app's body read, so its exception handlers answer 413.
                    raise HTTPException(413, self.detail, headers=CLOSE if unread else None)
            return message

        return counted

    async def _drained(self, receive: Receive) -> bool:
        """Read and drop the rest of the body; whether it ended within the drain's bytes and time."""
        dropped = 0
        try:
            async with asyncio.timeout(self.drain_seconds):
                while dropped <= self.drain_bytes:
                    message = await receive()
                    if message["type"] != "http.request" or not message.get("more_body", False):
                        return True
                    dropped += len(message.get("body", b""))
        except TimeoutError:
            pass
        return False


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
