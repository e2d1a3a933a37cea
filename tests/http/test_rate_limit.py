"""Rate limits on a lastro app in-process: the default budget, a route's own, exemptions, per user, 429s."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.requests import HTTPConnection

import lastro
from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.settings import get_settings
from tests.support.lifespan import running

pytestmark = pytest.mark.anyio


def user_header(connection: HTTPConnection) -> str | None:
    return connection.headers.get("x-user")


def make_app(sqlite_url: str, **settings: object) -> FastAPI:
    options = {"DATABASE_URL": sqlite_url, "RATE_LIMIT_DEFAULT": "3/minute", **settings}
    app = lastro.create_app(get_settings(**options), identify=user_header)

    @app.get("/a")
    async def a() -> dict[str, str]:
        return {"route": "a"}

    @app.get("/b")
    async def b() -> dict[str, str]:
        return {"route": "b"}

    @app.get("/own")
    @lastro.rate_limit("1/minute", name="own")
    async def own() -> dict[str, str]:
        return {"route": "own"}

    @app.get("/free")
    @lastro.rate_limit(None)
    async def free() -> dict[str, str]:
        return {"route": "free"}

    @app.post("/login")
    @lastro.rate_limit(lambda settings: settings.RATE_LIMIT_LOGIN, name="login", fail_closed=True)
    async def login(request: Request, username: str) -> dict[str, str]:
        await lastro.check_rate_limit(request, username, "2/minute", name="login-username", fail_closed=True)
        return {"user": username}

    return app


@pytest.fixture
async def client(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(sqlite_url)
    async with running(app), client_for(app) as client:
        yield client


def client_for(app: FastAPI, address: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://service")


async def statuses(client: httpx.AsyncClient, path: str, times: int, **headers: str) -> list[int]:
    return [(await client.get(path, headers=headers)).status_code for _ in range(times)]


async def test_the_default_limit_refuses_past_its_quota(client: httpx.AsyncClient) -> None:
    """RATE_LIMIT_DEFAULT=3/minute: three requests pass, the fourth is a 429."""
    assert await statuses(client, "/a", 4) == [200, 200, 200, 429]


async def test_a_429_is_problem_json_with_retry_after_and_ratelimit_fields(client: httpx.AsyncClient) -> None:
    """The refusal says when to come back, in Retry-After and in the IETF RateLimit fields."""
    await statuses(client, "/a", 3)
    response = await client.get("/a")
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["status"] == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-policy"] == '"default";q=3;w=60'
    assert response.headers["ratelimit"].startswith('"default";r=0;t=')


async def test_an_allowed_answer_tells_what_remains(client: httpx.AsyncClient) -> None:
    """Each answer carries the policy and what remains of it."""
    response = await client.get("/a")
    assert response.headers["ratelimit-policy"] == '"default";q=3;w=60'
    assert response.headers["ratelimit"].startswith('"default";r=2;t=')


async def test_routes_without_a_limit_of_their_own_share_the_default_budget(
    client: httpx.AsyncClient,
) -> None:
    """The default is a budget per client across routes, not per route."""
    assert await statuses(client, "/a", 2) == [200, 200]
    assert await statuses(client, "/b", 2) == [200, 429]


async def test_a_route_with_its_own_limit_counts_apart(client: httpx.AsyncClient) -> None:
    """`@lastro.rate_limit("1/minute")` replaces the default on that route, with its own count."""
    assert await statuses(client, "/own", 2) == [200, 429]
    assert await statuses(client, "/a", 3) == [200, 200, 200]


async def test_an_exempt_route_and_health_are_never_limited(client: httpx.AsyncClient) -> None:
    """`@lastro.rate_limit(None)` and the health routes answer however often they are called."""
    assert set(await statuses(client, "/free", 6)) == {200}
    assert set(await statuses(client, "/health/live", 6)) == {200}
    assert "ratelimit" not in (await client.get("/free")).headers


async def test_each_client_address_has_its_own_budget(sqlite_url: str) -> None:
    """Another address is not held back by the first one's requests."""
    app = make_app(sqlite_url)
    async with (
        running(app),
        client_for(app, "203.0.113.7") as first,
        client_for(app, "198.51.100.9") as second,
    ):
        assert await statuses(first, "/a", 4) == [200, 200, 200, 429]
        assert await statuses(second, "/a", 1) == [200]


async def test_authenticated_callers_are_counted_per_user(client: httpx.AsyncClient) -> None:
    """Two users behind one address each get the whole budget; the address's own is untouched."""
    assert await statuses(client, "/a", 4, **{"x-user": "ana"}) == [200, 200, 200, 429]
    assert await statuses(client, "/a", 3, **{"x-user": "bia"}) == [200, 200, 200]
    assert await statuses(client, "/a", 1) == [200]


async def test_a_limit_in_code_answers_429_problem_json(client: httpx.AsyncClient) -> None:
    """`check_rate_limit` over its quota raises RateLimited, answered 429 with Retry-After."""
    codes = [(await client.post("/login", params={"username": "ana"})).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = await client.post("/login", params={"username": "ana"})
    assert refused.headers["content-type"] == PROBLEM_CONTENT_TYPE
    # Both policies the request met are listed: the route's (login) and the username's.
    assert refused.headers["ratelimit-policy"] == '"login-username";q=2;w=60, "login";q=20;w=60'
    assert int(refused.headers["retry-after"]) >= 1


async def test_off_turns_the_default_limit_off(sqlite_url: str) -> None:
    """RATE_LIMIT_DEFAULT=off: no limit and no RateLimit fields on routes without their own."""
    app = make_app(sqlite_url, RATE_LIMIT_DEFAULT="off")
    async with running(app), client_for(app) as client:
        assert set(await statuses(client, "/a", 5)) == {200}
        assert "ratelimit" not in (await client.get("/a")).headers


async def test_an_unreachable_redis_fails_open_and_login_fails_closed(sqlite_url: str) -> None:
    """Redis on a closed port: general routes keep their limit per worker, login answers 503."""
    app = make_app(sqlite_url, REDIS_URL="redis://127.0.0.1:1/0", REDIS_SOCKET_TIMEOUT=0.5)
    async with running(app), client_for(app, "127.0.0.1") as client:  # loopback sees /health detail
        assert await statuses(client, "/a", 4) == [200, 200, 200, 429]
        login = await client.post("/login", params={"username": "ana"})
        assert login.status_code == 503
        assert login.headers["content-type"] == PROBLEM_CONTENT_TYPE
        assert int(login.headers["retry-after"]) >= 1
        health = (await client.get("/health")).json()["checks"]["rate_limits"]
        assert health["status"] == "ok"
        assert (health["store"], health["degraded"]) == ("redis", True)
        assert health["fallbacks"] == 4
