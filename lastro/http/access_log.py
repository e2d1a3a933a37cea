"""One access line per request: method, path, route template, status, duration_ms, client, request id.

Every request is also listed in `lastro.observability.requests.IN_FLIGHT` while it is served, so that a
worker replaced for a stuck event loop can say which requests it held.

A request slower than `slow_request_seconds` (SLOW_REQUEST_SECONDS) also writes a warning from
`lastro.slow`, at every log level up to WARNING: the access line may be off, the slow line is not. Slow
lines are not throttled: a worker finishes at most MAX_IN_FLIGHT of them per SLOW_REQUEST_SECONDS (256 a
second at the defaults, fewer than the access lines they sit beside at INFO), none carries a traceback, and
each names a request id someone may be looking for.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from lastro.http.request_id import current_request_id
from lastro.http.response_status import recording_status, response_status
from lastro.observability.logging import ACCESS_LOGGER, SLOW_LOGGER, get_line_logger, get_logger
from lastro.observability.requests import IN_FLIGHT, route_template

__all__ = ["AccessLogMiddleware"]

logger = get_line_logger(ACCESS_LOGGER)
slow_logger = get_logger(SLOW_LOGGER)
_stdlib_logger = logging.getLogger(ACCESS_LOGGER)


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None


def _log_slow(scope: Scope, status: int | None, seconds: float, request_id: str | None) -> None:
    slow_logger.warning(
        "slow request",
        method=scope["method"],
        route=route_template(scope),
        path=scope["path"],
        status=status,
        duration_ms=round(seconds * 1000, 3),
        request_id=request_id,
    )


class AccessLogMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        slow_request_seconds: float = 0.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        # Off is infinity: the check after every request stays one comparison.
        self.slow_after = slow_request_seconds or math.inf
        # IN_FLIGHT's ages are read on time.perf_counter: another clock is for tests.
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.clock()
        key = id(scope)
        request_id = current_request_id()
        IN_FLIGHT[key] = (scope, request_id, started)
        # At LOG_LEVEL=warning and above there is no access line: skip its bookkeeping too. The slow line
        # then goes without a status, which only a wrapper around every request's `send` would learn.
        if not _stdlib_logger.isEnabledFor(logging.INFO):
            try:
                await self.app(scope, receive, send)
            finally:
                IN_FLIGHT.pop(key, None)
                seconds = self.clock() - started
                if seconds > self.slow_after:
                    _log_slow(scope, None, seconds, request_id)
            return
        try:
            await self.app(scope, receive, recording_status(scope, send))
        finally:
            IN_FLIGHT.pop(key, None)
            seconds = self.clock() - started
            # 500 is what the client gets if the application raises before answering.
            status = response_status(scope) or 500
            logger.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                route=route_template(scope),
                status=status,
                duration_ms=round(seconds * 1_000_000) / 1000,  # round(ms, 3), without its slow path
                client=_client(scope),
            )
            if seconds > self.slow_after:
                _log_slow(scope, status, seconds, request_id)
