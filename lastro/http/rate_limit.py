"""Check a route's rate limit for the client before the route runs; 429 problem+json when over it.

Installed around each route's own ASGI app at start-up (`lastro.rate_limits.limit_routes`), so each route
checks its own policy with no routing of its own. The client is the authenticated user when the service's
`identify` function names one, else the peer address (which `lastro serve` takes from `X-Forwarded-For`
only for `TRUSTED_PROXIES`). Every answer carries the IETF `RateLimit-Policy` and `RateLimit` fields
(draft-ietf-httpapi-ratelimit-headers); a 429 adds `Retry-After`.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastro.errors import RateLimitUnavailable
from lastro.http.problem import send_problem
from lastro.ratelimit.limiter import RateLimiter
from lastro.ratelimit.policy import RoutePolicy
from lastro.ratelimit.window import Decision

__all__ = ["Identify", "RateLimitMiddleware", "rate_limit_headers"]

Identify = Callable[[HTTPConnection], str | None]


class RateLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, limiter: RateLimiter, policy: RoutePolicy, identify: Identify | None = None
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.policy = policy
        self.identify = identify
        self._suffixes = [(f":{rate.amount}/{rate.period}", rate) for rate in policy.rates]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = self._client(scope)
        checks = [(f"{self.policy.name}:{client}{suffix}", rate) for suffix, rate in self._suffixes]
        try:
            decisions = await self.limiter.hit(checks, fail_closed=self.policy.fail_closed)
        except RateLimitUnavailable as exc:
            await send_problem(send, 503, exc.detail, headers={"Retry-After": str(exc.retry_after)})
            return
        denied = [decision for decision in decisions if not decision.allowed]
        if denied:
            decision = max(denied, key=lambda d: d.reset_after)
            headers = rate_limit_headers(self.policy.name, decision)
            headers["Retry-After"] = str(decision.retry_after)
            detail = f"rate limit of {decision.rate} exceeded; retry in {decision.retry_after} s"
            await send_problem(send, 429, detail, headers=headers)
            return
        tightest = min(decisions, key=lambda d: d.remaining)
        extra = [
            (name.lower().encode(), value.encode())
            for name, value in rate_limit_headers(self.policy.name, tightest).items()
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _client(self, scope: Scope) -> str:
        if self.identify is not None:
            user = self.identify(HTTPConnection(scope))
            if user is not None:
                return f"user:{user}"
        peer = scope.get("client")
        return f"ip:{peer[0]}" if peer else "ip:unknown"


def rate_limit_headers(policy: str, decision: Decision) -> dict[str, str]:
    """The IETF fields for `decision`: the policy's quota and window, what remains and when it resets."""
    rate = decision.rate
    return {
        "RateLimit-Policy": f'"{policy}";q={rate.amount};w={rate.period}',
        "RateLimit": f'"{policy}";r={decision.remaining};t={max(0, round(decision.reset_after))}',
    }
