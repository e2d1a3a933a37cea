"""The Allow header of a 405 names every method of the path, across the routes that serve it."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from lastro import create_app
from lastro.settings import get_settings

pytestmark = pytest.mark.anyio


async def test_a_405_allows_the_methods_of_every_route_of_the_path(sqlite_url: str) -> None:
    """GET and POST of one path are two routes: a PUT there is 405 with `Allow: GET, POST` as problem+json."""
    app: FastAPI = create_app(get_settings(DATABASE_URL=sqlite_url))

    @app.get("/notes")
    async def read() -> list[str]:
        return []

    @app.post("/notes")
    async def write() -> list[str]:
        return []

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.put("/notes")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_405_allows_the_methods_of_an_included_router(sqlite_url: str) -> None:
    """Routes of an included APIRouter, resolved only when matched, are listed too."""
    app: FastAPI = create_app(get_settings(DATABASE_URL=sqlite_url))
    router = APIRouter(prefix="/api")

    @router.get("/items/{item_id:int}")
    async def read(item_id: int) -> int:
        return item_id

    @router.delete("/items/{item_id:int}")
    async def remove(item_id: int) -> int:
        return item_id

    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.post("/api/items/3")
        unknown = await client.post("/api/items/three")
    assert (response.status_code, response.headers["allow"]) == (405, "GET, DELETE")
    assert unknown.status_code == 404
