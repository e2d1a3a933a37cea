"""Count every HTTP request into the service's metrics: method, route template, status and duration.

The route label is the template the router matched (`/api/orders/{order_id}`), never the raw path, and
every path no route matched shares the label `unmatched`, so a scan of random URLs adds one series, not
one per URL. It sits outside back-pressure, the rate limits and the edge guards, so their refusals are
counted too (and back-pressure's also as shed). With the dashboard enabled, a request slower than the
worker's slowest recent ones also goes into their record (`lastro.observability.slowest`).
"""

from __future__ import annotations

import time
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from lastro.http.in_flight import SHED_KEY
from lastro.http.request_id import current_request_id
from lastro.http.response_status import recording_status, response_status
from lastro.observability.metrics import UNMATCHED, Metrics
from lastro.observability.requests import route_template

__all__ = ["HoldsMetrics", "MetricsMiddleware"]


class HoldsMetrics(Protocol):
    """The service's state (`lastro.state.ServiceState`), read as an attribute: faster per request than
    the application's `state`."""

    metrics: Metrics | None


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, state: HoldsMetrics) -> None:
        self.app = app
        self.state = state  # its metrics are opened by the lifespan, after the middleware stack is built

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics = self.state.metrics
        if scope["type"] != "http" or metrics is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, recording_status(scope, send))
        finally:
            seconds = time.perf_counter() - started
            # 500 is what the client gets if the application raises before answering.
            status = response_status(scope) or 500
            route = route_template(scope)
            metrics.answered(scope["method"], route, status, seconds)
            slowest = metrics.slowest
            if slowest is not None and seconds > slowest.floor:  # one comparison for an ordinary request
                slowest.offer(scope["method"], route or UNMATCHED, status, seconds, current_request_id())
            if status == 429:
                metrics.rate_limited.inc()
            elif scope.get(SHED_KEY):
                metrics.shed.inc()
