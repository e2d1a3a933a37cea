"""Who may scrape /metrics: a bearer METRICS_TOKEN or a client in METRICS_NETWORKS."""

from __future__ import annotations

import httpx
import pytest

import lastro
from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.settings import get_settings
from tests.support.lifespan import running

pytestmark = pytest.mark.anyio

TOKEN = "m3trics-T0ken-of-the-scraping-server"
OUTSIDE = "203.0.113.7"


async def get(
    sqlite_url: str, client: str = "127.0.0.1", headers: dict[str, str] | None = None, **settings: str
) -> httpx.Response:
    app = lastro.create_app(get_settings(DATABASE_URL=sqlite_url, **settings))
    transport = httpx.ASGITransport(app=app, client=(client, 40000))
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.get("/metrics", headers=headers)


async def test_loopback_scrapes_by_default(sqlite_url: str) -> None:
    """With the default METRICS_NETWORKS, Prometheus on the same machine gets the text."""
    response = await get(sqlite_url)
    assert response.status_code == 200
    assert "http_requests_in_progress" in response.text


async def test_an_outside_client_without_a_token_configured_is_forbidden(sqlite_url: str) -> None:
    """403 problem+json naming METRICS_NETWORKS."""
    response = await get(sqlite_url, client=OUTSIDE)
    assert (response.status_code, response.headers["content-type"]) == (403, PROBLEM_CONTENT_TYPE)
    assert "METRICS_NETWORKS" in response.json()["detail"]


async def test_an_outside_client_without_the_token_is_asked_for_it(sqlite_url: str) -> None:
    """With METRICS_TOKEN set, a wrong or missing token is a 401 with a Bearer challenge."""
    response = await get(
        sqlite_url, client=OUTSIDE, headers={"Authorization": "Bearer nope"}, METRICS_TOKEN=TOKEN
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="metrics"'


async def test_the_token_opens_metrics_from_any_address(sqlite_url: str) -> None:
    """The right bearer token scrapes from outside METRICS_NETWORKS."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = await get(sqlite_url, client=OUTSIDE, headers=headers, METRICS_TOKEN=TOKEN)
    assert response.status_code == 200


async def test_a_forwarded_request_is_not_believed_to_be_local(sqlite_url: str) -> None:
    """A proxy on loopback that nobody listed in TRUSTED_PROXIES does not open /metrics to the internet."""
    response = await get(sqlite_url, headers={"X-Forwarded-For": OUTSIDE})
    assert response.status_code == 403


async def test_metrics_are_not_in_the_openapi_document(sqlite_url: str) -> None:
    """An operator's endpoint, text/plain: not part of the API contract."""
    app = lastro.create_app(get_settings(DATABASE_URL=sqlite_url, DOCS_ENABLED="true"))
    assert "/metrics" not in app.openapi()["paths"]


def test_a_guessable_token_is_refused_in_production() -> None:
    """METRICS_TOKEN follows SECRET_KEY's rules in production."""
    settings = get_settings(ENVIRONMENT="development", METRICS_TOKEN="changeme")
    problems = settings.production_problems()
    assert any(problem.startswith("METRICS_TOKEN") for problem in problems)
