"""`RoutePolicy` and the `rate_limit` decorator that gives a route its own.

A route without its own policy shares the client's default budget (`RATE_LIMIT_DEFAULT`) with every other
such route. A route marked with `@lastro.rate_limit(...)` has a budget of its own instead, counted per
client for that route alone; `@lastro.rate_limit(None)` exempts it (health, metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from lastro.ratelimit.window import Rate, parse
from lastro.settings import Settings

__all__ = ["RouteLimit", "RoutePolicy", "rate_limit"]

F = TypeVar("F", bound=Callable[..., object])
MARK = "__lastro_rate_limit__"


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """The rates one route checks, under `name` (the IETF `RateLimit` policy name and the counting key)."""

    name: str
    rates: tuple[Rate, ...]
    fail_closed: bool = False


@dataclass(frozen=True, slots=True)
class RouteLimit:
    """What `rate_limit` records on an endpoint, resolved against the settings at start-up."""

    rates: str | Callable[[Settings], str] | None
    name: str | None
    fail_closed: bool

    def policy(self, settings: Settings, default_name: str) -> RoutePolicy | None:
        if self.rates is None:
            return None
        text = self.rates if isinstance(self.rates, str) else self.rates(settings)
        rates = parse(text, f"rate_limit({self.name or default_name!r})")
        return RoutePolicy(self.name or default_name, rates, self.fail_closed) if rates else None


def rate_limit(
    rates: str | Callable[[Settings], str] | None,
    *,
    name: str | None = None,
    fail_closed: bool = False,
) -> Callable[[F], F]:
    """Give a route its own rate limit instead of `RATE_LIMIT_DEFAULT`, or none at all.

    `rates` is `"10/minute"` (several joined by `;`), a function of the settings that returns such a text
    (`lambda settings: settings.RATE_LIMIT_LOGIN`), or None to exempt the route. `fail_closed` refuses
    requests (503) while a shared store is unreachable, where other limits fall back to per-worker counts.
    """
    if isinstance(rates, str):
        parse(rates, f"rate_limit({name!r})")  # a typo fails at import, not at the first request

    def mark(endpoint: F) -> F:
        setattr(endpoint, MARK, RouteLimit(rates, name, fail_closed))
        return endpoint

    return mark


def route_limit(endpoint: object) -> RouteLimit | None:
    """The `rate_limit` mark of an endpoint, if it has one."""
    mark = getattr(endpoint, MARK, None)
    return mark if isinstance(mark, RouteLimit) else None
