"""Back-pressure: cap the requests a worker serves at once and refuse the excess with a fast 503.

An event loop that accepts everything queues it all; at 200 connections that was measured as a 6 s p99.
A request over the cap gets `503` problem+json with `Retry-After` at once, so a client or load balancer
can go elsewhere or come back, while the requests already admitted keep their latency.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from lastro.http.problem import send_problem

__all__ = ["InFlightLimitMiddleware"]


class InFlightLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_in_flight: int,
        retry_after: int = 1,
        exempt_prefixes: tuple[str, ...] = ("/health",),
    ) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.retry_after = str(retry_after)
        self.exempt_prefixes = exempt_prefixes
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            await send_problem(
                send,
                503,
                f"this worker is serving its maximum of {self.max_in_flight} requests; retry shortly",
                headers={"Retry-After": self.retry_after},
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
