"""Rate limits in a running service: the store each worker opens, the check every route makes.

- `open_limiter(settings, database)`: Redis when `REDIS_URL` is set (exact across machines); else a file
  in `/dev/shm` shared by the machine's workers (`lastro.ratelimit.shared_file`, exact across workers);
  on Windows, each worker's own memory.
- `limit_routes(app, limits)`: at start-up, puts the check of each FastAPI route's policy
  (`RATE_LIMIT_DEFAULT`, or the route's own `@lastro.rate_limit`) in front of the route's `handle`, for the
  client: the user `identify` names, else the peer address. The routes of included routers are reached
  too, at any depth; a route added after start-up is not limited.
- `await check_rate_limit(request, key, rates)`: a limit on something only the handler knows, such as the
  username a login names.

Over a limit, `RateLimited` is raised and answered as 429 problem+json with `Retry-After` and the IETF
`RateLimit` fields; a fail-closed limit whose store is down raises `RateLimitUnavailable` (503).
"""

from __future__ import annotations

import functools
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from lastro.db.engine import Database
from lastro.errors import RateLimited
from lastro.http.rate_limit import HEADERS_KEY
from lastro.observability.logging import get_logger
from lastro.ratelimit.limiter import RateLimiter
from lastro.ratelimit.policy import RoutePolicy, route_limit
from lastro.ratelimit.stores import LocalStore, Store
from lastro.ratelimit.window import Decision, Rate, parse
from lastro.settings import Settings
from lastro.shared_memory import memory_directory

__all__ = ["Identify", "LimitedHandle", "RateLimits", "check_rate_limit", "limit_routes", "open_limiter"]

logger = get_logger("lastro.ratelimit")
DEFAULT_POLICY = "default"

Identify = Callable[[HTTPConnection], str | None]


def open_limiter(settings: Settings, database: Database | None) -> RateLimiter:
    return RateLimiter(_open_store(settings, database), retry_interval=1.0)


def _open_store(settings: Settings, database: Database | None) -> Store:
    if settings.REDIS_URL:
        from lastro.ratelimit.redis_store import RedisStore  # only with the redis extra

        return RedisStore(
            settings.REDIS_URL,
            timeout=settings.REDIS_SOCKET_TIMEOUT,
            prefix=f"lastro:{settings.SERVICE_NAME}:",
        )
    if sys.platform == "win32":
        return LocalStore()
    from lastro.ratelimit.shared_file import SharedFileStore

    path = _shared_path(settings, database)
    try:
        return SharedFileStore(path)
    except OSError as exc:
        logger.warning("rate-limit file unavailable: limits hold per worker", path=str(path), error=str(exc))
        return LocalStore()


def _shared_path(settings: Settings, database: Database | None) -> Path:
    """One table per service and database on this machine, in memory (see `lastro.ratelimit.shared_file`)."""
    if database is not None and database.sqlite_path is not None:
        where = str(database.sqlite_path.resolve())
    else:
        where = settings.DATABASE_URL
    digest = hashlib.sha256(f"{settings.SERVICE_NAME}\n{where}".encode()).hexdigest()[:16]
    return memory_directory(settings.SHARED_MEMORY_DIR) / f"lastro-limits-{digest}"


class RateLimits:
    """A running service's limits: the limiter, each route's policy, and who the client is."""

    def __init__(self, limiter: RateLimiter, settings: Settings, identify: Identify | None = None) -> None:
        self.limiter = limiter
        self.settings = settings
        self.identify = identify
        default = parse(settings.RATE_LIMIT_DEFAULT, "RATE_LIMIT_DEFAULT")
        self.default = RoutePolicy(DEFAULT_POLICY, default) if default else None

    def policy_for(self, endpoint: object) -> RoutePolicy | None:
        """The route's own policy, the default, or None (exempt)."""
        mark = route_limit(endpoint)
        name = getattr(endpoint, "__name__", "route")
        return mark.policy(self.settings, name) if mark is not None else self.default

    def client(self, connection: HTTPConnection) -> str:
        if self.identify is not None:
            user = self.identify(connection)
            if user is not None:
                return f"user:{user}"
        peer = connection.scope.get("client")
        return f"ip:{peer[0]}" if peer else "ip:unknown"

    async def hit(self, connection: HTTPConnection, policy: RoutePolicy, who: str) -> None:
        """Count one request of `who` against `policy`: raise `RateLimited` when over it, else record the
        `RateLimit` fields for the response."""
        checks = [(f"{policy.name}:{who}:{rate.amount}/{rate.period}", rate) for rate in policy.rates]
        decisions = await self.limiter.hit(checks, fail_closed=policy.fail_closed)
        denied = [decision for decision in decisions if not decision.allowed]
        if denied:
            decision = max(denied, key=lambda d: d.reset_after)
            headers = rate_limit_fields(policy.name, decision)
            headers["Retry-After"] = str(decision.retry_after)
            raise RateLimited(
                f"rate limit of {decision.rate} exceeded; retry in {decision.retry_after} s", headers=headers
            )
        recorded = connection.scope.get(HEADERS_KEY)
        if recorded is not None:
            tightest = min(decisions, key=lambda d: d.remaining)
            fields = rate_limit_fields(policy.name, tightest).items()
            recorded.extend((name.lower().encode(), value.encode()) for name, value in fields)

    async def close(self) -> None:
        await self.limiter.close()


def rate_limit_fields(policy: str, decision: Decision) -> dict[str, str]:
    """The IETF fields for `decision` (draft-ietf-httpapi-ratelimit-headers): the policy's quota and
    window, what remains and when it resets."""
    rate = decision.rate
    return {
        "RateLimit-Policy": f'"{policy}";q={rate.amount};w={rate.period}',
        "RateLimit": f'"{policy}";r={decision.remaining};t={max(0, round(decision.reset_after))}',
    }


def limit_routes(app: FastAPI, limits: RateLimits) -> None:
    """Put each limited route's check in front of its `handle`, once however often the app starts.

    Routed requests reach a FastAPI route through its `handle`, whether the route is the app's own or one
    of an included router (FastAPI builds those at request time, so their ASGI apps cannot be wrapped
    ahead), and the check there costs no dependency solving. WebSocket routes are not limited: a socket is
    one long request.
    """
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        if isinstance(vars(route).get("handle"), LimitedHandle):
            del vars(route)["handle"]  # a previous start-up's check: `route.handle` is the route's own again
        policy = limits.policy_for(route.endpoint)
        if policy is not None:
            vars(route)["handle"] = LimitedHandle(route.handle, limits, policy, route.methods)


class LimitedHandle:
    """A route's `handle` behind its rate limit: over it, `RateLimited` (429) before the route runs."""

    def __init__(
        self, handle: ASGIApp, limits: RateLimits, policy: RoutePolicy, methods: set[str] | None
    ) -> None:
        self.handle = handle
        self.limits = limits
        self.policy = policy
        self.methods = methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A method the route does not take is answered 405 by the route, and costs no budget.
        if self.methods is None or scope["method"] in self.methods:
            connection = HTTPConnection(scope)
            await self.limits.hit(connection, self.policy, self.limits.client(connection))
        await self.handle(scope, receive, send)


async def check_rate_limit(
    request: Request, key: str, rates: str, *, name: str, fail_closed: bool = False
) -> None:
    """Count one hit of `key` against `rates` under policy `name`; raise `RateLimited` when over it.

    With `fail_closed`, an unreachable shared store raises `RateLimitUnavailable` (503) instead of
    falling back to per-worker counts.
    """
    limits: RateLimits | None = request.app.state.lastro.rate_limits
    parsed = _parse(rates)
    if limits is not None and parsed:
        await limits.hit(request, RoutePolicy(name, parsed, fail_closed), key)


@functools.lru_cache(maxsize=64)
def _parse(rates: str) -> tuple[Rate, ...]:
    return parse(rates)
