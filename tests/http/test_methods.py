"""The Allow header of a 405 names every method of the path, across the routes that serve it."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

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
