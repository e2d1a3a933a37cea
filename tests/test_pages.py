"""`lastro.PageLimit`, `lastro.page_limit`: `limit` capped by MAX_PAGE_SIZE, 422 past it, cap in OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

import lastro
from lastro.http.problem import PROBLEM_CONTENT_TYPE

pytestmark = pytest.mark.anyio

CAP = 20


async def paged(limit: lastro.PageLimit) -> int:
    return limit


def make_app(sqlite_url: str, **settings: object) -> FastAPI:
    app = lastro.create_app(lastro.get_settings(DATABASE_URL=sqlite_url, MAX_PAGE_SIZE=CAP, **settings))
    router = APIRouter()

    @router.get("/items")
    async def items(limit: lastro.PageLimit) -> dict[str, int]:
        return {"limit": limit}

    @router.get("/events")
    async def events(limit: Annotated[int, lastro.page_limit(default=5)]) -> dict[str, int]:
        return {"limit": limit}

    @router.get("/wide")
    async def wide(limit: Annotated[int, lastro.page_limit(default=CAP * 10)]) -> dict[str, int]:
        return {"limit": limit}

    @router.get("/nested")
    async def nested(limit: Annotated[int, Depends(paged)]) -> dict[str, int]:
        return {"limit": limit}

    app.include_router(router)
    return app


async def get(app: FastAPI, path: str, **params: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, params=params)


async def test_a_limit_within_the_cap_is_given_to_the_route(sqlite_url: str) -> None:
    """`?limit=N` up to MAX_PAGE_SIZE reaches the route as it was asked."""
    app = make_app(sqlite_url)
    assert (await get(app, "/items", limit=7)).json() == {"limit": 7}
    assert (await get(app, "/items", limit=CAP)).json() == {"limit": CAP}


async def test_a_limit_over_the_cap_is_a_422_problem(sqlite_url: str) -> None:
    """`?limit=1000000` answers 422 problem+json whose error names the query's limit and the cap."""
    response = await get(make_app(sqlite_url), "/items", limit=1_000_000)
    assert (response.status_code, response.headers["content-type"]) == (422, PROBLEM_CONTENT_TYPE)
    [error] = response.json()["errors"]
    assert (error["loc"], error["type"]) == (["query", "limit"], "less_than_equal")
    assert error["msg"] == f"Input should be less than or equal to {CAP} (MAX_PAGE_SIZE)"


@pytest.mark.parametrize("limit", ["0", "-1", "many"])
async def test_a_limit_below_one_or_not_a_number_is_a_422(sqlite_url: str, limit: str) -> None:
    """0, a negative number or a word: 422 problem+json, as FastAPI validates it."""
    assert (await get(make_app(sqlite_url), "/items", limit=limit)).status_code == 422


async def test_without_a_limit_page_limit_gives_a_full_page(sqlite_url: str) -> None:
    """`PageLimit` left out is MAX_PAGE_SIZE."""
    assert (await get(make_app(sqlite_url), "/items")).json() == {"limit": CAP}


async def test_without_a_limit_the_routes_default_applies(sqlite_url: str) -> None:
    """`page_limit(default=5)` left out is 5."""
    assert (await get(make_app(sqlite_url), "/events")).json() == {"limit": 5}


async def test_a_default_over_the_cap_is_cut_to_the_cap(sqlite_url: str) -> None:
    """A route default larger than MAX_PAGE_SIZE (the setting was lowered) gives MAX_PAGE_SIZE."""
    assert (await get(make_app(sqlite_url), "/wide")).json() == {"limit": CAP}


async def test_the_cap_holds_in_a_nested_dependency(sqlite_url: str) -> None:
    """A dependency that takes `PageLimit` is capped the same way."""
    app = make_app(sqlite_url)
    assert (await get(app, "/nested", limit=CAP + 1)).status_code == 422
    assert (await get(app, "/nested")).json() == {"limit": CAP}


def limit_parameter(app: FastAPI, path: str) -> dict[str, Any]:
    operation = app.openapi()["paths"][path]["get"]
    [parameter] = [item for item in operation["parameters"] if item["name"] == "limit"]
    return parameter  # type: ignore[no-any-return]


def test_openapi_shows_the_cap_and_the_default(sqlite_url: str) -> None:
    """/openapi.json gives `limit` an integer schema with minimum 1, maximum MAX_PAGE_SIZE and the default."""
    app = make_app(sqlite_url)
    items, events = limit_parameter(app, "/items"), limit_parameter(app, "/events")
    schema = {"title": "Limit", "type": "integer", "minimum": 1, "maximum": CAP, "default": CAP}
    assert items["schema"] == schema
    assert (events["schema"]["maximum"], events["schema"]["default"]) == (CAP, 5)
    assert items["description"] == f"items in one page, at most {CAP} (MAX_PAGE_SIZE)"
    assert limit_parameter(app, "/nested")["schema"]["maximum"] == CAP


def test_openapi_keeps_lastros_error_contract(sqlite_url: str) -> None:
    """Documenting the cap leaves the problem answers lastro documents on the same operation."""
    responses = make_app(sqlite_url).openapi()["paths"]["/items"]["get"]["responses"]
    assert "application/problem+json" in responses["422"]["content"]


def test_a_limit_named_by_the_route_itself_is_left_alone(sqlite_url: str) -> None:
    """A route's own `limit` without page_limit keeps the schema the route gave it."""
    app = make_app(sqlite_url)

    @app.get("/own")
    async def own(limit: int = 3) -> dict[str, int]:
        return {"limit": limit}

    assert "maximum" not in limit_parameter(app, "/own")["schema"]
