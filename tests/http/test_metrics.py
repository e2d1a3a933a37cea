"""`MetricsMiddleware`: every request counted by route template, and what the service refused, why."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

import lastro
from lastro.observability.slowest import SlowestRequests
from lastro.settings import get_settings
from tests.support.lifespan import running
from tests.support.metrics import Series, parse, series_of

pytestmark = pytest.mark.anyio


def make_app(sqlite_url: str, **settings: str) -> tuple[FastAPI, asyncio.Event, asyncio.Event]:
    app = lastro.create_app(get_settings(DATABASE_URL=sqlite_url, **settings))
    entered, release = asyncio.Event(), asyncio.Event()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/held")
    async def held() -> dict[str, bool]:
        entered.set()
        await release.wait()
        return {"ok": True}

    return app, entered, release


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service")


async def scrape(http: httpx.AsyncClient) -> Series:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    return parse(response.text)


def count(series: Series, name: str, **labels: str) -> float:
    return sum(series_of(series, name, **labels).values())


async def test_requests_are_counted_under_their_route_template(sqlite_url: str) -> None:
    """Three item ids, one series: the route's template, not the path."""
    app, _, _ = make_app(sqlite_url)
    async with running(app), client(app) as http:
        for item_id in (1, 2, 3):
            await http.get(f"/items/{item_id}")
        series = await scrape(http)
    assert count(series, "http_requests_total", route="/items/{item_id}", status="200", method="GET") == 3
    assert count(series, "http_request_duration_seconds_count", route="/items/{item_id}") == 3


async def test_a_scrape_is_counted_under_its_own_route(sqlite_url: str) -> None:
    """/metrics requests never mix with the application's."""
    app, _, _ = make_app(sqlite_url)
    async with running(app), client(app) as http:
        await scrape(http)
        series = await scrape(http)
    assert count(series, "http_requests_total", route="/metrics") == 1  # the first; the second is answering


async def test_a_rate_limited_request_is_counted(sqlite_url: str) -> None:
    """A 429 from a rate limit adds to lastro_requests_rate_limited_total."""
    app, _, _ = make_app(sqlite_url, RATE_LIMIT_DEFAULT="1/minute")
    async with running(app), client(app) as http:
        statuses = [(await http.get("/items/1")).status_code for _ in range(3)]
        series = await scrape(http)
    assert statuses == [200, 429, 429]
    assert count(series, "lastro_requests_rate_limited_total") == 2


async def test_a_shed_request_is_counted(sqlite_url: str) -> None:
    """A 503 from the in-flight cap adds to lastro_requests_shed_total, and to its route's 503s."""
    app, entered, release = make_app(sqlite_url, MAX_IN_FLIGHT="1")
    async with running(app), client(app) as http:
        first = asyncio.create_task(http.get("/held"))
        await entered.wait()
        shed = await http.get("/items/1")
        release.set()
        await first
        series = await scrape(http)
    assert shed.status_code == 503
    assert count(series, "lastro_requests_shed_total") == 1
    assert count(series, "http_requests_total", status="503") == 1


async def test_metrics_can_be_turned_off(sqlite_url: str) -> None:
    """METRICS_ENABLED=false: no /metrics route, nothing counted on the way."""
    app, _, _ = make_app(sqlite_url, METRICS_ENABLED="false")
    async with running(app), client(app) as http:
        assert (await http.get("/metrics")).status_code == 404


async def test_a_request_joins_the_slowest_with_its_route_and_id(sqlite_url: str) -> None:
    """With the dashboard on, a timed request goes into the worker's record of its slowest."""
    app, _, _ = make_app(sqlite_url)
    async with running(app), client(app) as http:
        response = await http.get("/items/1")
    (kept,) = app.state.lastro.metrics.slowest.recent()
    assert (kept["route"], kept["status"], kept["request_id"]) == (
        "/items/{item_id}",
        200,
        response.headers["x-request-id"],
    )


async def test_a_request_faster_than_the_slowest_kept_is_left_out(sqlite_url: str) -> None:
    """Once the record is full, a request under its floor is not kept."""
    app, _, _ = make_app(sqlite_url)
    async with running(app), client(app) as http:
        slowest = app.state.lastro.metrics.slowest = SlowestRequests(keep=1)
        slowest.offer("GET", "/items/{item_id}", 200, 10.0, "the-slow-one")
        await http.get("/items/1")
    assert [kept["request_id"] for kept in slowest.recent()] == ["the-slow-one"]
