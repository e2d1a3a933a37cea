"""The API documentation FastAPI serves by itself (`/docs`, `/redoc`, `/openapi.json`), which production
does not publish unless `DOCS_ENABLED=true`.

FastAPI adds those routes in its constructor, so an application built before `install()` already has them:
`hide_docs(app)` takes them out again. Routes of the application's own at the same paths stay.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route

__all__ = ["hide_docs"]


def hide_docs(app: FastAPI) -> None:
    """Remove the documentation routes FastAPI added, and unset their URLs so nothing links to them."""
    paths = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url} - {None}
    app.router.routes[:] = [route for route in app.router.routes if not _is_fastapi_docs(route, paths)]
    app.openapi_url = app.docs_url = app.redoc_url = app.swagger_ui_oauth2_redirect_url = None


def _is_fastapi_docs(route: object, paths: set[str | None]) -> bool:
    # FastAPI.setup() defines these endpoints; an application's own route at /docs is defined elsewhere.
    return (
        isinstance(route, Route)
        and route.path in paths
        and route.endpoint.__qualname__.startswith("FastAPI.setup.")
    )
