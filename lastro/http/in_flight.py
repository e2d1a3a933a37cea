"""Back-pressure: refuse what a worker cannot serve in time with a fast 503, instead of queueing it.

An event loop that accepts everything queues it all, and every request then waits seconds behind the queue
(benchmarks/RESULTS.md, "Back-pressure"). Two limits, each answered with `503` problem+json and
`Retry-After`, so a client or load balancer can go elsewhere or come back while the requests already
admitted keep their latency:

- `MAX_IN_FLIGHT`: requests in progress in this worker. This catches handlers that wait (on the database,
  on another service) while more requests keep arriving.
- `MAX_LOOP_LAG`: how late the event loop runs (`lastro.http.loop_lag`). This catches handlers that hold
  the loop: CPU-bound code keeps the requests behind it unread in their sockets, where no count sees them.

A request waiting for the rest of its body is not counted while it waits: it costs the worker nothing yet,
and clients trickling their bodies would otherwise hold every slot until `BODY_TIMEOUT` cuts them.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastro.http.loop_lag import LoopLag
from lastro.http.problem import send_problem
from lastro.observability.metrics import DASHBOARD_PATH, METRICS_PATH

__all__ = ["EXEMPT_PREFIXES", "SHED_KEY", "InFlightLimitMiddleware"]

# Probes, scrapes and the dashboard must answer even when the worker is saturated: that is when they matter.
EXEMPT_PREFIXES = ("/health", METRICS_PATH, DASHBOARD_PATH)
SHED_KEY = "lastro.shed"  # set in the scope of a refused request, for the layers outside (metrics)
RETRY_AFTER = {"Retry-After": "1"}


class InFlightLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_in_flight: int = 0,
        max_loop_lag: float = 0.0,
        exempt_prefixes: tuple[str, ...] = EXEMPT_PREFIXES,
        loop_lag: LoopLag | None = None,
    ) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.max_loop_lag = max_loop_lag
        self.exempt_prefixes = exempt_prefixes
        self.loop_lag = loop_lag or LoopLag()
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal()
        if refusal is not None:
            scope[SHED_KEY] = True
            await send_problem(send, 503, refusal, headers=RETRY_AFTER)
            return
        self.in_flight += 1
        try:
            await self.app(scope, self._uncounted_while_waiting(receive), send)
        finally:
            self.in_flight -= 1

    def _uncounted_while_waiting(self, receive: Receive) -> Receive:
        body_done = False

        async def receive_uncounted() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            self.in_flight -= 1
            try:
                message = await receive()
            finally:
                self.in_flight += 1
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        return receive_uncounted

    def _refusal(self) -> str | None:
        if self.max_in_flight and self.in_flight >= self.max_in_flight:
            return f"this worker is serving its maximum of {self.max_in_flight} requests (MAX_IN_FLIGHT)"
        if self.max_loop_lag:
            lag = self.loop_lag.current()
            if lag > self.max_loop_lag:
                return f"this worker is {lag * 1000:.0f} ms behind (MAX_LOOP_LAG is {self.max_loop_lag:g} s)"
        return None
