"""The registry of requests in flight that the access-log middleware keeps, at any log level."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from lastro.http.access_log import AccessLogMiddleware
from lastro.http.request_id import RequestIdMiddleware
from lastro.observability.requests import IN_FLIGHT, requests_in_flight

pytestmark = pytest.mark.anyio


def listing_app(seen: list[list[dict[str, Any]]]) -> RequestIdMiddleware:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        seen.append(requests_in_flight())
        return {"id": item_id}

    return RequestIdMiddleware(AccessLogMiddleware(app))


async def get_item(seen: list[list[dict[str, Any]]]) -> None:
    transport = httpx.ASGITransport(app=listing_app(seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/items/3", headers={"X-Request-ID": "listed-0123456789"})
    assert response.status_code == 200


@pytest.fixture
def warning_level() -> Iterator[None]:
    access = logging.getLogger("lastro.access")
    previous = access.level
    access.setLevel(logging.WARNING)
    yield
    access.setLevel(previous)


async def test_a_request_is_listed_while_served_and_gone_after() -> None:
    """While its handler runs, the request is listed with route and request id; afterwards it is not."""
    seen: list[list[dict[str, Any]]] = []
    await get_item(seen)
    [[request]] = seen
    assert (request["method"], request["path"], request["route"]) == ("GET", "/items/3", "/items/{item_id}")
    assert request["request_id"] == "listed-0123456789"
    assert IN_FLIGHT == {}


@pytest.mark.usefixtures("warning_level")
async def test_requests_are_listed_without_access_lines_too() -> None:
    """At LOG_LEVEL=warning (no access line) the registry still lists the request."""
    seen: list[list[dict[str, Any]]] = []
    await get_item(seen)
    assert [[request["request_id"] for request in listed] for listed in seen] == [["listed-0123456789"]]
    assert IN_FLIGHT == {}
