"""Add the IETF `RateLimit-Policy` and `RateLimit` fields that a request's rate-limit checks recorded.

The checks run after routing, where the route's policy is known (`lastro.rate_limits`); they append the
fields to a list this middleware puts in the scope, and it adds them to the response's headers. A refused
request never gets here with fields: its 429 carries its own.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HEADERS_KEY", "RateLimitHeadersMiddleware"]

HEADERS_KEY = "lastro.rate_limit_headers"


class RateLimitHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        recorded: list[tuple[bytes, bytes]] = []
        scope[HEADERS_KEY] = recorded

        async def send_with_fields(message: Message) -> None:
            if recorded and message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *recorded]
            await send(message)

        await self.app(scope, receive, send_with_fields)
