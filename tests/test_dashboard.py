"""`/admin/dashboard` and `/admin/dashboard.json` in one process: who reads them, and what they say."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

import lastro
from lastro.dashboard import dashboard_document
from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.observability.dashboard_data import ReadingHistory
from lastro.observability.metrics import OBSERVER_ROUTES, Metrics
from lastro.observability.slowest import SlowestRequests
from lastro.settings import get_settings
from tests.support.lifespan import running

pytestmark = pytest.mark.anyio

TOKEN = "d4shboard-T0ken-of-the-operators"
OUTSIDE = "203.0.113.7"
DOCUMENT_KEYS = {
    "service",
    "at",
    "since",
    "window_seconds",
    "requests_per_second",
    "latency_ms",
    "error_rate",
    "client_error_rate",
    "status_counts",
    "totals",
    "workers",
    "worker_totals",
    "pool",
    "jobs",
    "slowest",
}


def make_app(sqlite_url: str, **settings: str) -> FastAPI:
    app = lastro.create_app(get_settings(DATABASE_URL=sqlite_url, **settings))

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/fails")
    async def fails() -> None:
        raise RuntimeError("boom")

    return app


@asynccontextmanager
async def service(
    sqlite_url: str, client: str = "127.0.0.1", **settings: str
) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(sqlite_url, **settings)
    transport = httpx.ASGITransport(app=app, client=(client, 40000), raise_app_exceptions=False)
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_loopback_reads_the_document(sqlite_url: str) -> None:
    """With the default METRICS_NETWORKS, the operator on the machine gets the document, never cached."""
    async with service(sqlite_url) as http:
        response = await http.get("/admin/dashboard.json")
    assert response.status_code == 200
    assert set(response.json()) == DOCUMENT_KEYS
    assert response.headers["cache-control"] == "no-store"


async def test_an_outside_client_without_a_token_configured_is_forbidden(sqlite_url: str) -> None:
    """403 problem+json naming METRICS_NETWORKS, as /metrics answers."""
    async with service(sqlite_url, client=OUTSIDE) as http:
        response = await http.get("/admin/dashboard.json")
    assert (response.status_code, response.headers["content-type"]) == (403, PROBLEM_CONTENT_TYPE)
    assert "METRICS_NETWORKS" in response.json()["detail"]


async def test_an_outside_client_is_asked_for_the_token(sqlite_url: str) -> None:
    """With METRICS_TOKEN set, no token or a wrong one is a 401 with a Bearer challenge."""
    async with service(sqlite_url, client=OUTSIDE, METRICS_TOKEN=TOKEN) as http:
        response = await http.get("/admin/dashboard.json", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="metrics"'


async def test_the_metrics_token_opens_the_document_from_anywhere(sqlite_url: str) -> None:
    """The bearer METRICS_TOKEN reads it from outside METRICS_NETWORKS."""
    async with service(sqlite_url, client=OUTSIDE, METRICS_TOKEN=TOKEN) as http:
        response = await http.get("/admin/dashboard.json", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200


async def test_the_page_is_served_to_anyone_under_a_strict_policy(sqlite_url: str) -> None:
    """The page holds no data; it runs only its own script and stylesheet."""
    async with service(sqlite_url, client=OUTSIDE, METRICS_TOKEN=TOKEN) as http:
        page = await http.get("/admin/dashboard")
        script = await http.get("/admin/dashboard/assets/dashboard.js")
        style = await http.get("/admin/dashboard/assets/dashboard.css")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'src="dashboard/assets/dashboard.js"' in page.text
    assert "<script>" not in page.text
    assert "style=" not in page.text
    assert (script.status_code, script.headers["content-type"]) == (200, "text/javascript; charset=utf-8")
    assert (style.status_code, style.headers["content-type"]) == (200, "text/css; charset=utf-8")


async def test_an_asset_is_revalidated_by_its_etag(sqlite_url: str) -> None:
    """A browser that has the script gets 304 until the package changes it."""
    async with service(sqlite_url) as http:
        first = await http.get("/admin/dashboard/assets/dashboard.js")
        again = await http.get(
            "/admin/dashboard/assets/dashboard.js", headers={"If-None-Match": first.headers["etag"]}
        )
    assert again.status_code == 304


async def test_an_unknown_asset_is_not_found(sqlite_url: str) -> None:
    """Only the dashboard's own files are served from its assets."""
    async with service(sqlite_url) as http:
        response = await http.get("/admin/dashboard/assets/..%2F..%2Fsettings.py")
    assert (response.status_code, response.headers["content-type"]) == (404, PROBLEM_CONTENT_TYPE)


async def test_the_first_read_counts_the_whole_run(sqlite_url: str) -> None:
    """Five requests (3 answered, one 404, one 500): the totals and the window's status counts say so."""
    async with service(sqlite_url) as http:
        for path in ("/items/1", "/items/2", "/items/3", "/nowhere", "/fails"):
            await http.get(path)
        document = (await http.get("/admin/dashboard.json")).json()
    counts = {"2xx": 3, "3xx": 0, "4xx": 1, "5xx": 1}
    assert document["totals"] == {"requests": 5, "status_counts": counts}
    assert document["status_counts"] == counts
    assert (document["error_rate"], document["client_error_rate"]) == (0.2, 0.2)
    assert document["window_seconds"] == pytest.approx(document["at"] - document["since"], abs=0.01)
    assert all(value is not None and value > 0 for value in document["latency_ms"].values())


async def test_the_dashboards_own_reads_are_not_counted(sqlite_url: str) -> None:
    """Reading the dashboard, its page and /metrics adds nothing to its figures."""
    async with service(sqlite_url) as http:
        await http.get("/items/1")
        for path in (
            "/admin/dashboard.json",
            "/admin/dashboard",
            "/metrics",
            "/admin/dashboard/assets/dashboard.js",
        ):
            await http.get(path)
        document = (await http.get("/admin/dashboard.json")).json()
    assert document["totals"]["requests"] == 1
    assert [request["route"] for request in document["slowest"]] == ["/items/{item_id}"]


async def test_the_slowest_requests_carry_their_request_id(sqlite_url: str) -> None:
    """Each request kept can be found in the logs by the id its client was given."""
    async with service(sqlite_url) as http:
        answered = await http.get("/items/7")
        failed = await http.get("/fails")
        document = (await http.get("/admin/dashboard.json")).json()
    ids = {request["request_id"]: request for request in document["slowest"]}
    assert ids.keys() == {answered.headers["x-request-id"], failed.headers["x-request-id"]}
    assert ids[failed.headers["x-request-id"]]["status"] == 500
    assert ids[answered.headers["x-request-id"]]["route"] == "/items/{item_id}"


async def test_the_document_shows_this_worker_and_its_jobs(sqlite_url: str) -> None:
    """One process: one worker, the totals of that one, the pool and the background jobs."""
    async with service(sqlite_url, SERVICE_NAME="shop") as http:
        document = (await http.get("/admin/dashboard.json")).json()
    assert document["service"]["name"] == "shop"
    assert len(document["workers"]) == 1
    assert document["worker_totals"]["workers"] == 1
    assert document["pool"]["size"] > 0
    jobs = {job["name"]: job for job in document["jobs"]}
    assert jobs["resource-monitor"] == {
        "name": "resource-monitor",
        "failures": 0,
        "consecutive_failures": 0,
        "degraded": False,
    }


async def test_the_dashboard_is_never_rate_limited(sqlite_url: str) -> None:
    """A dashboard polling every 2 s does not spend the client's budget."""
    async with service(sqlite_url, RATE_LIMIT_DEFAULT="2/minute") as http:
        statuses = [(await http.get("/admin/dashboard.json")).status_code for _ in range(5)]
    assert statuses == [200] * 5


@pytest.mark.parametrize("switch", ["DASHBOARD_ENABLED", "METRICS_ENABLED"])
async def test_the_dashboard_can_be_switched_off(sqlite_url: str, switch: str) -> None:
    """DASHBOARD_ENABLED=false removes it; so does METRICS_ENABLED=false, since it reads the metrics."""
    async with service(sqlite_url, **{switch: "false"}) as http:
        statuses = {
            (await http.get(path)).status_code for path in ("/admin/dashboard", "/admin/dashboard.json")
        }
    assert statuses == {404}


def test_the_dashboard_is_not_in_the_openapi_document(sqlite_url: str) -> None:
    """An operator's tool, not part of the API contract."""
    app = lastro.create_app(get_settings(DATABASE_URL=sqlite_url, DOCS_ENABLED="true"))
    assert not [path for path in app.openapi()["paths"] if path.startswith("/admin/dashboard")]


def test_every_dashboard_route_is_an_observer(sqlite_url: str) -> None:
    """The routes the dashboard adds are the ones its figures leave out."""
    app = lastro.create_app(get_settings(DATABASE_URL=sqlite_url))
    paths = {getattr(route, "path", "") for route in app.routes}
    assert {path for path in paths if path.startswith("/admin/dashboard")} <= OBSERVER_ROUTES


def test_a_later_read_covers_the_time_since_the_previous_one() -> None:
    """Read at 10 s, 30 requests, read at 12 s: 15 req/s over a 2 s window, the 30 requests only."""
    metrics = Metrics(None, started_at=1000.0)
    metrics.slowest = SlowestRequests()
    history = ReadingHistory(None)
    for _ in range(10):
        metrics.answered("GET", "/items/{item_id}", 200, 0.003)
    dashboard_document(metrics, history, now=1010.0)
    for _ in range(27):
        metrics.answered("GET", "/items/{item_id}", 200, 0.02)
    for _ in range(3):
        metrics.answered("GET", "/items/{item_id}", 503, 0.02)
    document = dashboard_document(metrics, history, now=1012.0)
    assert (document["window_seconds"], document["requests_per_second"]) == (2.0, 15.0)
    assert document["status_counts"] == {"2xx": 27, "3xx": 0, "4xx": 0, "5xx": 3}
    assert document["error_rate"] == 0.1
    assert 10.0 < document["latency_ms"]["p50"] <= 25.0  # all 30 between the 10 and 25 ms bounds
    assert document["totals"]["requests"] == 40
