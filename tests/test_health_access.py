"""Who may read the /health detail: a bearer HEALTH_TOKEN or a client in HEALTH_NETWORKS; live and ready
stay open to everyone."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from lastro.health import HealthRegistry, health_router
from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.settings import get_settings
from lastro.state import ServiceState

pytestmark = pytest.mark.anyio

TOKEN = "h3alth-T0ken-of-the-monitoring-system"
OUTSIDE = "203.0.113.7"


async def get(
    path: str, client: str = "127.0.0.1", headers: dict[str, str] | None = None, **settings: str
) -> httpx.Response:
    app = FastAPI()
    state = ServiceState(settings=get_settings(**settings), health=HealthRegistry(version="1"))
    app.state.lastro = state
    app.include_router(health_router())
    transport = httpx.ASGITransport(app=app, client=(client, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.get(path, headers=headers)


async def test_loopback_reads_the_detail_by_default() -> None:
    """With the default HEALTH_NETWORKS, a client on 127.0.0.1 gets the health document."""
    response = await get("/health")
    assert (response.status_code, response.json()["status"]) == (200, "healthy")


async def test_ipv6_loopback_reads_the_detail_by_default() -> None:
    """::1 is in the default HEALTH_NETWORKS too."""
    assert (await get("/health", client="::1")).status_code == 200


async def test_an_outside_client_without_a_token_configured_is_forbidden() -> None:
    """With no HEALTH_TOKEN set, a client outside HEALTH_NETWORKS gets 403 problem+json naming the setting."""
    response = await get("/health", client=OUTSIDE)
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert "HEALTH_NETWORKS" in response.json()["detail"]
    assert "checks" not in response.json()


async def test_an_outside_client_without_the_token_is_asked_for_it() -> None:
    """With HEALTH_TOKEN set, a client outside HEALTH_NETWORKS without it gets 401 and a Bearer challenge."""
    response = await get("/health", client=OUTSIDE, HEALTH_TOKEN=TOKEN)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="health"'
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE


async def test_the_token_opens_the_detail_from_any_address() -> None:
    """Authorization: Bearer <HEALTH_TOKEN> reads the detail from outside HEALTH_NETWORKS."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = await get("/health", client=OUTSIDE, headers=headers, HEALTH_TOKEN=TOKEN)
    assert (response.status_code, response.json()["status"]) == (200, "healthy")


async def test_the_bearer_scheme_is_read_without_case() -> None:
    """`bearer` in lower case is the same scheme (RFC 9110 schemes are case-insensitive)."""
    headers = {"Authorization": f"bearer {TOKEN}"}
    assert (await get("/health", client=OUTSIDE, headers=headers, HEALTH_TOKEN=TOKEN)).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer ", "Bearer"],
    ids=["prefix", "longer", "basic", "no-scheme", "empty", "scheme-only"],
)
async def test_a_wrong_token_is_refused(authorization: str) -> None:
    """Anything but the exact token after `Bearer ` is a 401."""
    headers = {"Authorization": authorization}
    assert (await get("/health", client=OUTSIDE, headers=headers, HEALTH_TOKEN=TOKEN)).status_code == 401


async def test_a_client_in_a_listed_network_reads_the_detail() -> None:
    """HEALTH_NETWORKS=10.0.0.0/8 opens the detail to 10.1.2.3."""
    assert (await get("/health", client="10.1.2.3", HEALTH_NETWORKS="10.0.0.0/8")).status_code == 200


async def test_loopback_is_refused_once_the_networks_leave_it_out() -> None:
    """HEALTH_NETWORKS replaces the default: without loopback in it, 127.0.0.1 is refused too."""
    assert (await get("/health", HEALTH_NETWORKS="10.0.0.0/8")).status_code == 403


async def test_an_ipv4_mapped_address_counts_as_its_ipv4_address() -> None:
    """::ffff:127.0.0.1 (a dual-stack socket's view of loopback) is loopback."""
    assert (await get("/health", client="::ffff:127.0.0.1")).status_code == 200


async def test_a_client_that_is_not_an_address_is_refused() -> None:
    """A client named by something other than an IP address (a Unix socket, a test client) is outside."""
    assert (await get("/health", client="testclient")).status_code == 403


async def test_production_applies_the_same_rule() -> None:
    """In production the detail is refused outside HEALTH_NETWORKS and open on loopback, as in development."""
    production = {"ENVIRONMENT": "production", "SECRET_KEY": "Vt3kQ9xLm2Rb7ZpW4sNc8YfHd1Ju6GaE5oKi0TqXyBn"}
    inside, outside = await get("/health", **production), await get("/health", client=OUTSIDE, **production)
    assert (inside.status_code, outside.status_code) == (200, 403)


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded"])
async def test_loopback_forwarded_by_an_untrusted_proxy_is_not_loopback(header: str) -> None:
    """A request a local reverse proxy forwarded, with no TRUSTED_PROXIES, comes from elsewhere: 403."""
    headers = {header: "203.0.113.9" if header == "X-Forwarded-For" else "for=203.0.113.9"}
    assert (await get("/health", headers=headers)).status_code == 403


async def test_a_forwarded_request_still_opens_with_the_token() -> None:
    """Through an untrusted proxy, the bearer token still opens the detail."""
    headers = {"X-Forwarded-For": "203.0.113.9", "Authorization": f"Bearer {TOKEN}"}
    assert (await get("/health", headers=headers, HEALTH_TOKEN=TOKEN)).status_code == 200


async def test_with_trusted_proxies_the_forwarded_client_address_decides() -> None:
    """With TRUSTED_PROXIES set the server has made the client address the forwarded one: it decides."""
    headers = {"X-Forwarded-For": "127.0.0.1"}
    assert (await get("/health", headers=headers, TRUSTED_PROXIES="10.0.0.1")).status_code == 200


@pytest.mark.parametrize("path", ["/health/live", "/health/ready"])
async def test_live_and_ready_stay_open_to_every_client(path: str) -> None:
    """Orchestrators probe live and ready from anywhere, with no token."""
    assert (await get(path, client=OUTSIDE, HEALTH_TOKEN=TOKEN)).status_code == 200
