"""One access line per request: method, path, route template, status, duration_ms, client, request id.

Every request is also listed in `lastro.observability.requests.IN_FLIGHT` while it is served, so that a
worker replaced for a stuck event loop can say which requests it held.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastro.http.request_id import current_request_id
from lastro.observability.logging import ACCESS_LOGGER, get_line_logger
from lastro.observability.requests import IN_FLIGHT, route_template

__all__ = ["AccessLogMiddleware"]

logger = get_line_logger(ACCESS_LOGGER)
_stdlib_logger = logging.getLogger(ACCESS_LOGGER)


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        key = id(scope)
        IN_FLIGHT[key] = (scope, current_request_id(), started)
        # At LOG_LEVEL=warning and above there is no access line: skip its bookkeeping too.
        if not _stdlib_logger.isEnabledFor(logging.INFO):
            try:
                await self.app(scope, receive, send)
            finally:
                IN_FLIGHT.pop(key, None)
            return
        status = 500  # what the client gets if the application raises before answering

        async def capture_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture_status)
        finally:
            IN_FLIGHT.pop(key, None)
            fields = {
                "method": scope["method"],
                "path": scope["path"],
                "route": route_template(scope),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "client": _client(scope),
            }
            logger.info("request", **fields)
