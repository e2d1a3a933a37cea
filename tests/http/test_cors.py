"""CORS from CORS_ORIGINS and CORS_ALLOW_CREDENTIALS, through create_app: preflights and response headers.

starlette's CORSMiddleware does the work (lastro.http.cors only puts a refused preflight in problem+json);
these tests hold lastro's wiring of it to the settings.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from lastro.app import create_app
from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.settings import get_settings

pytestmark = pytest.mark.anyio

ALLOWED = "https://app.example.com"
REFUSED = "https://evil.example.net"


def make_app(sqlite_url: str, **settings: object) -> FastAPI:
    app = create_app(get_settings(DATABASE_URL=sqlite_url, CORS_ORIGINS=ALLOWED, **settings))

    @app.put("/items/{item_id}")
    async def put_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return app


async def preflight(app: FastAPI, origin: str) -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type,x-request-id",
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.options("/items/1", headers=headers)


async def put(app: FastAPI, origin: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.put("/items/1", headers={"Origin": origin})


async def test_a_preflight_from_an_allowed_origin_is_granted(sqlite_url: str) -> None:
    """OPTIONS with Origin and Access-Control-Request-Method: 200, the origin, method and headers allowed."""
    response = await preflight(make_app(sqlite_url), ALLOWED)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "PUT" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-headers"] == "content-type,x-request-id"
    assert "access-control-allow-credentials" not in response.headers


async def test_a_preflight_from_another_origin_is_refused(sqlite_url: str) -> None:
    """A preflight from an origin not listed gets 400 problem+json and no Access-Control-Allow-Origin."""
    response = await preflight(make_app(sqlite_url), REFUSED)
    assert (response.status_code, response.headers["content-type"]) == (400, PROBLEM_CONTENT_TYPE)
    assert response.json()["detail"] == "Disallowed CORS origin: see CORS_ORIGINS"
    assert "access-control-allow-origin" not in response.headers


async def test_a_response_to_an_allowed_origin_names_it_and_exposes_lastros_headers(sqlite_url: str) -> None:
    """The actual request gets Access-Control-Allow-Origin and the exposed X-Request-ID, ETag, Location."""
    response = await put(make_app(sqlite_url), ALLOWED)
    assert (response.status_code, response.headers["access-control-allow-origin"]) == (200, ALLOWED)
    exposed = response.headers["access-control-expose-headers"].lower()
    assert {"x-request-id", "etag", "location", "retry-after"} <= set(exposed.split(", "))


async def test_a_response_to_another_origin_has_no_cors_headers(sqlite_url: str) -> None:
    """The request is served, but without CORS headers the browser keeps the answer from the page."""
    response = await put(make_app(sqlite_url), REFUSED)
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_credentials_are_allowed_only_when_configured(sqlite_url: str) -> None:
    """CORS_ALLOW_CREDENTIALS=true adds Access-Control-Allow-Credentials to preflights and responses."""
    app = make_app(sqlite_url, CORS_ALLOW_CREDENTIALS=True)
    granted, response = await preflight(app, ALLOWED), await put(app, ALLOWED)
    assert granted.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-origin"] == ALLOWED


async def test_without_cors_origins_no_cors_headers_are_sent(sqlite_url: str) -> None:
    """With CORS_ORIGINS empty (the default) a cross-origin request gets no CORS headers at all."""
    app = create_app(get_settings(DATABASE_URL=sqlite_url))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/health/live", headers={"Origin": ALLOWED})
    assert "access-control-allow-origin" not in response.headers
