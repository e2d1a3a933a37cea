"""/docs, /redoc and /openapi.json: off in production unless DOCS_ENABLED=true, for create_app and install."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from lastro import create_app, install
from lastro.docs import hide_docs
from lastro.settings import Settings, get_settings

pytestmark = pytest.mark.anyio

KEY = "Vt3kQ9xLm2Rb7ZpW4sNc8YfHd1Ju6GaE5oKi0TqXyBn-Mw_r"
Build = Callable[[Settings], FastAPI]
DOCS_PATHS = ["/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"]


def production(**settings: str) -> Settings:
    return get_settings(ENVIRONMENT="production", SECRET_KEY=KEY, **settings)


def installed(settings: Settings) -> FastAPI:
    """An application the user made, with FastAPI's documentation routes, then handed to install()."""
    app = FastAPI(title="mine")

    @app.get("/items")
    async def items() -> list[str]:
        return []

    return install(app, settings)


async def statuses(app: FastAPI, paths: list[str]) -> list[int]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return [(await client.get(path)).status_code for path in paths]


@pytest.mark.parametrize("build", [create_app, installed], ids=["create_app", "install"])
async def test_production_serves_no_documentation(build: Build) -> None:
    """In production every documentation route answers 404."""
    app = build(production())
    assert await statuses(app, DOCS_PATHS) == [404, 404, 404, 404]


@pytest.mark.parametrize("build", [create_app, installed], ids=["create_app", "install"])
async def test_production_with_docs_enabled_serves_them(build: Build) -> None:
    """DOCS_ENABLED=true in production publishes the documentation routes."""
    app = build(production(DOCS_ENABLED="true"))
    assert await statuses(app, DOCS_PATHS) == [200, 200, 200, 200]


@pytest.mark.parametrize("build", [create_app, installed], ids=["create_app", "install"])
async def test_development_serves_the_documentation(build: Build) -> None:
    """In development the documentation routes answer, as FastAPI's do by default."""
    assert await statuses(build(get_settings()), DOCS_PATHS) == [200, 200, 200, 200]


@pytest.mark.parametrize("build", [create_app, installed], ids=["create_app", "install"])
async def test_development_with_docs_disabled_serves_none(build: Build) -> None:
    """DOCS_ENABLED=false hides them in development too."""
    app = build(get_settings(DOCS_ENABLED="false"))
    assert await statuses(app, DOCS_PATHS) == [404, 404, 404, 404]


async def test_hidden_docs_leave_the_application_routes_and_its_schema() -> None:
    """The application's routes still answer, and app.openapi() still builds the schema for tooling."""
    app = installed(production())
    assert await statuses(app, ["/items", "/health/live"]) == [200, 200]
    assert "/items" in app.openapi()["paths"]
    assert (app.openapi_url, app.docs_url, app.redoc_url) == (None, None, None)


async def test_custom_documentation_paths_are_hidden_too() -> None:
    """Documentation moved with create_app(docs_url=..., openapi_url=...) is hidden at its own paths."""
    app = create_app(production(), docs_url="/api/docs", redoc_url=None, openapi_url="/api/schema.json")
    assert await statuses(app, ["/api/docs", "/api/schema.json"]) == [404, 404]


async def test_an_application_route_at_a_documentation_path_stays() -> None:
    """A route of the application's own at /docs is not FastAPI's documentation, and is kept."""
    app = FastAPI(docs_url=None)

    @app.get("/docs", response_class=PlainTextResponse)
    async def own_docs() -> str:
        return "see the wiki"

    hide_docs(app)
    assert await statuses(app, ["/docs", "/openapi.json"]) == [200, 404]
