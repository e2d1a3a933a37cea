"""Rate limits in a running service: the store each worker opens, the routes it guards, checks in code.

- `open_limiter(settings, database)`: Redis when `REDIS_URL` is set (exact across machines); else a file
  shared by the machine's workers (`lastro.ratelimit.shared_file`, exact across workers); on Windows,
  each worker's own memory.
- `limit_routes(app, state)`, at start-up: wraps every route in `RateLimitMiddleware` with its policy
  (`RATE_LIMIT_DEFAULT`, or the route's own `@lastro.rate_limit`).
- `await check_rate_limit(request, key, rates)`: a limit on something only the handler knows, such as the
  username a login names. Over it, `RateLimited` is raised and answered as 429.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import tempfile
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.routing import Route

from lastro.db.engine import Database
from lastro.db.write_lock import lock_path
from lastro.errors import RateLimited
from lastro.http.rate_limit import Identify, RateLimitMiddleware, rate_limit_headers
from lastro.observability.logging import get_logger
from lastro.ratelimit.limiter import RateLimiter
from lastro.ratelimit.policy import RoutePolicy, route_limit
from lastro.ratelimit.stores import LocalStore, Store
from lastro.ratelimit.window import Rate, parse
from lastro.settings import Settings
from lastro.state import ServiceState

__all__ = ["check_rate_limit", "limit_routes", "open_limiter"]

logger = get_logger("lastro.ratelimit")
DEFAULT_POLICY = "default"


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
    if database is not None and database.sqlite_path is not None:
        return lock_path(database.sqlite_path.resolve(), "-lastro-limits")
    # A server database: one file per service and database on this machine.
    digest = hashlib.sha256(f"{settings.SERVICE_NAME}\n{settings.DATABASE_URL}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"lastro-limits-{digest}"


def limit_routes(app: FastAPI, state: ServiceState, identify: Identify | None = None) -> int:
    """Wrap each route of `app` that has a policy in `RateLimitMiddleware`; how many were wrapped."""
    limiter = state.rate_limiter
    if limiter is None:
        return 0
    settings = state.settings
    default = parse(settings.RATE_LIMIT_DEFAULT, "RATE_LIMIT_DEFAULT")
    wrapped = 0
    for route in app.router.routes:
        if not isinstance(route, Route) or isinstance(route.app, RateLimitMiddleware):
            continue
        mark = route_limit(route.endpoint)
        if mark is not None:
            policy = mark.policy(settings, route.name)
        else:
            policy = RoutePolicy(DEFAULT_POLICY, default) if default else None
        if policy is not None:
            route.app = RateLimitMiddleware(route.app, limiter=limiter, policy=policy, identify=identify)
            wrapped += 1
    return wrapped


async def check_rate_limit(
    request: Request, key: str, rates: str, *, name: str, fail_closed: bool = False
) -> None:
    """Count one hit of `key` against `rates` under policy `name`; raise `RateLimited` when over it.

    With `fail_closed`, an unreachable shared store raises `RateLimitUnavailable` (503) instead of
    falling back to per-worker counts.
    """
    limiter: RateLimiter | None = request.app.state.lastro.rate_limiter
    parsed = _parse(rates)
    if limiter is None or not parsed:
        return
    checks = [(f"{name}:{key}:{rate.amount}/{rate.period}", rate) for rate in parsed]
    decisions = await limiter.hit(checks, fail_closed=fail_closed)
    denied = [decision for decision in decisions if not decision.allowed]
    if denied:
        decision = max(denied, key=lambda d: d.reset_after)
        headers = rate_limit_headers(name, decision)
        headers["Retry-After"] = str(decision.retry_after)
        raise RateLimited(
            f"rate limit of {decision.rate} exceeded; retry in {decision.retry_after} s", headers=headers
        )


@functools.lru_cache(maxsize=64)
def _parse(rates: str) -> tuple[Rate, ...]:
    return parse(rates)
