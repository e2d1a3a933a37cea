"""Routes of included routers are limited too, at any depth, and a second start-up counts each hit once;
the embedded table lives in memory, one per service and database."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI

import lastro
from lastro.db.engine import Database
from lastro.rate_limits import open_limiter
from lastro.ratelimit.shared_file import SharedFileStore
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


async def test_a_router_included_twice_shares_one_budget(sqlite_url: str) -> None:
    """The same route under two prefixes is one route with one default budget, checked once a request."""
    app = lastro.create_app(get_settings(DATABASE_URL=sqlite_url, RATE_LIMIT_DEFAULT="2/minute"))
    router = APIRouter()

    @router.get("/plain")
    async def plain() -> dict[str, str]:
        return {"route": "plain"}

    app.include_router(router, prefix="/one")
    app.include_router(router, prefix="/two")
    async with running(app):
        assert await statuses(app, "/one/plain", 1) == [200]
        assert await statuses(app, "/two/plain", 2) == [200, 429]


async def test_a_method_the_route_does_not_take_costs_no_budget(sqlite_url: str) -> None:
    """A 405 is the route refusing the method, not a use of it: the budget is left whole."""
    app = make_app(sqlite_url)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        assert [(await client.delete("/outer/plain")).status_code for _ in range(3)] == [405] * 3
        assert await statuses(app, "/outer/plain", 3) == [200, 200, 429]


async def test_routes_added_before_install_are_limited_too(sqlite_url: str) -> None:
    """`install()` on an app that already has its routes limits them: the check is put in at start-up."""
    app = FastAPI()

    @app.get("/early")
    async def early() -> dict[str, str]:
        return {"route": "early"}

    lastro.install(app, get_settings(DATABASE_URL=sqlite_url, RATE_LIMIT_DEFAULT="2/minute"))
    async with running(app):
        assert await statuses(app, "/early", 3) == [200, 200, 429]


async def table_path(url: str, service: str = "orders") -> Path:
    database = Database(url)
    limiter = open_limiter(get_settings(DATABASE_URL=url, SERVICE_NAME=service), database)
    try:
        assert isinstance(limiter.store, SharedFileStore)
        return limiter.store.path
    finally:
        await limiter.close()
        database.engine.dispose()


@pytest.mark.skipif(not os.access("/dev/shm", os.W_OK), reason="no /dev/shm here")
async def test_the_embedded_table_lives_in_shared_memory(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beside the database, writeback of the mapped page would cost every request a page fault."""
    monkeypatch.delenv("SHARED_MEMORY_DIR")  # the default, not the tests' own directory
    assert (await table_path(sqlite_url)).parent == Path("/dev/shm")


async def test_each_database_and_service_has_its_own_table(tmp_path: Path) -> None:
    """Two services, or two databases, never share counts; one service on one database always does."""
    first, second = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    paths = [await table_path(first), await table_path(second), await table_path(first, service="other")]
    assert len(set(paths)) == 3
    assert await table_path(first) == paths[0]


async def test_shared_memory_dir_moves_the_table(sqlite_url: str, tmp_path: Path) -> None:
    """SHARED_MEMORY_DIR puts the table where the operator says (another tmpfs, a container's volume)."""
    assert (await table_path(sqlite_url)).parent == tmp_path  # the tests set it to their own directory
