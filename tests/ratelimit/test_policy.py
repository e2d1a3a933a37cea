"""`@lastro.rate_limit`: what it records on a route, resolved against the settings."""

from __future__ import annotations

import pytest

import lastro
from lastro.ratelimit.policy import RoutePolicy, route_limit
from lastro.ratelimit.window import Rate
from lastro.settings import get_settings


def test_a_mark_resolves_to_the_routes_own_policy() -> None:
    """A rate text becomes the route's policy, named by the mark or else by the route."""

    @lastro.rate_limit("5/second;100/hour")
    async def endpoint() -> None: ...

    mark = route_limit(endpoint)
    assert mark is not None
    assert mark.policy(get_settings(), "endpoint") == RoutePolicy("endpoint", (Rate(5, 1), Rate(100, 3600)))


def test_rates_may_come_from_a_setting() -> None:
    """A function of the settings is read at start-up, so deployments tune it by environment."""

    @lastro.rate_limit(lambda settings: settings.RATE_LIMIT_LOGIN, name="login", fail_closed=True)
    async def endpoint() -> None: ...

    mark = route_limit(endpoint)
    assert mark is not None
    policy = mark.policy(get_settings(RATE_LIMIT_LOGIN="7/minute"), "endpoint")
    assert policy == RoutePolicy("login", (Rate(7, 60),), fail_closed=True)


def test_none_and_off_exempt_the_route() -> None:
    """`rate_limit(None)` and a setting of `off` leave the route without any limit."""

    @lastro.rate_limit(None)
    async def exempt() -> None: ...

    @lastro.rate_limit(lambda settings: settings.RATE_LIMIT_LOGIN)
    async def switched_off() -> None: ...

    settings = get_settings(RATE_LIMIT_LOGIN="off")
    marks = [route_limit(endpoint) for endpoint in (exempt, switched_off)]
    assert all(mark is not None and mark.policy(settings, "endpoint") is None for mark in marks)


def test_a_malformed_rate_fails_when_the_route_is_defined() -> None:
    """A typo in a decorator is an error at import, naming the decorator and the expected form."""
    with pytest.raises(ValueError, match=r"rate_limit\('search'\) must be N/second"):
        lastro.rate_limit("lots/minute", name="search")


def test_an_unmarked_endpoint_has_no_mark() -> None:
    """Routes without the decorator take RATE_LIMIT_DEFAULT."""

    async def endpoint() -> None: ...

    assert route_limit(endpoint) is None
