"""Routes of included routers are limited too, at any depth, and a second start-up counts each hit once."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI

import lastro
from lastro.settings import get_settings
from tests.support.lifespan import running

pytestmark = pytest.mark.anyio


def make_app(sqlite_url: str) -> FastAPI:
    app = lastro.create_app(get_settings(DATABASE_URL=sqlite_url, RATE_LIMIT_DEFAULT="2/minute"))
    outer, inner = APIRouter(prefix="/outer"), APIRouter(prefix="/inner")

    @outer.get("/plain")
    async def plain() -> dict[str, str]:
        return {"route": "plain"}

    @inner.get("/own")
    @lastro.rate_limit("1/minute", name="own")
    async def own() -> dict[str, str]:
        return {"route": "own"}

    outer.include_router(inner)
    app.include_router(outer)
    return app


async def statuses(app: FastAPI, path: str, times: int) -> list[int]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return [(await client.get(path)).status_code for _ in range(times)]


async def test_a_route_of_an_included_router_has_the_default_limit(sqlite_url: str) -> None:
    """A route declared on an APIRouter the app includes is refused past RATE_LIMIT_DEFAULT."""
    app = make_app(sqlite_url)
    async with running(app):
        assert await statuses(app, "/outer/plain", 3) == [200, 200, 429]


async def test_a_route_of_a_nested_router_has_its_own_limit(sqlite_url: str) -> None:
    """A router included in an included router: its route's own `rate_limit` applies."""
    app = make_app(sqlite_url)
    async with running(app):
        assert await statuses(app, "/outer/inner/own", 2) == [200, 429]


async def test_routes_are_wrapped_once_however_often_the_app_starts(sqlite_url: str) -> None:
    """A second start-up of the same app does not count each request twice."""
    app = make_app(sqlite_url)
    async with running(app):
        pass
    async with running(app):
        assert await statuses(app, "/outer/plain", 3) == [200, 200, 429]
