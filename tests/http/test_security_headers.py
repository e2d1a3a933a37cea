"""SecurityHeadersMiddleware: nosniff, DENY, Referrer-Policy on every response, HSTS only over https."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from lastro.app import create_app
from lastro.http.security_headers import SecurityHeadersMiddleware
from lastro.settings import get_settings
from tests.support.asgi import lifespan_through
from tests.support.servers import serve

pytestmark = pytest.mark.anyio

HSTS = "max-age=600"


def make_app(**options: object) -> SecurityHeadersMiddleware:
    app = FastAPI()

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/framed")
    async def framed() -> PlainTextResponse:
        return PlainTextResponse("ok", headers={"X-Frame-Options": "SAMEORIGIN"})

    defaults: dict[str, object] = {"referrer_policy": "same-origin", "hsts_seconds": 600}
    return SecurityHeadersMiddleware(app, **{**defaults, **options})  # type: ignore[arg-type]


async def get(app: object, url: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.get(url)


async def test_a_response_carries_the_headers() -> None:
    """nosniff, DENY and the configured Referrer-Policy are added to an ordinary response."""
    response = await get(make_app(), "http://test/plain")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"


async def test_hsts_is_sent_only_over_https() -> None:
    """Strict-Transport-Security appears when the scope's scheme is https, never over plain http."""
    assert "strict-transport-security" not in (await get(make_app(), "http://test/plain")).headers
    assert (await get(make_app(), "https://test/plain")).headers["strict-transport-security"] == HSTS


async def test_hsts_of_zero_is_not_sent() -> None:
    """HSTS_SECONDS=0 turns the header off, even over https."""
    response = await get(make_app(hsts_seconds=0), "https://test/plain")
    assert "strict-transport-security" not in response.headers


async def test_an_empty_referrer_policy_is_not_sent() -> None:
    """REFERRER_POLICY set to nothing leaves the header out."""
    assert "referrer-policy" not in (await get(make_app(referrer_policy=""), "http://test/plain")).headers


async def test_a_header_the_application_set_is_kept() -> None:
    """A route's own X-Frame-Options wins, once; the other headers are still added."""
    response = await get(make_app(), "http://test/framed")
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_an_error_response_carries_the_headers() -> None:
    """A 404 problem answered by the framework gets them too."""
    response = await get(make_app(), "https://test/missing")
    assert response.status_code == 404
    assert (response.headers["x-frame-options"], response.headers["strict-transport-security"]) == (
        "DENY",
        HSTS,
    )


async def test_create_app_adds_them_outside_its_own_refusals(sqlite_url: str) -> None:
    """Through create_app, a 413 from the body limit carries the headers from the settings."""
    settings = get_settings(DATABASE_URL=sqlite_url, MAX_BODY_BYTES=4, REFERRER_POLICY="strict-origin")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
        response = await client.post("/anything", content=b"too large")
    assert response.status_code == 413
    assert response.headers["referrer-policy"] == "strict-origin"
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_lifespan_messages_pass_through_untouched() -> None:
    """A lifespan scope reaches the application with the server's own receive and send."""
    assert await lifespan_through(lambda app: SecurityHeadersMiddleware(app)) == [
        {"type": "lifespan.startup"}
    ]


def test_behind_a_trusted_proxy_https_gets_hsts(tmp_path: Path) -> None:
    """Under `lastro serve`, X-Forwarded-Proto: https brings HSTS from a TRUSTED_PROXIES peer, not another."""
    forwarded = {"X-Forwarded-Proto": "https"}
    with serve(tmp_path, WORKERS="1", TRUSTED_PROXIES="127.0.0.1") as server:
        from_proxy = httpx.get(f"{server.url}/health/live", headers=forwarded)
        # 127.0.0.2 is this machine too, but not the listed proxy: its header is not believed.
        stranger = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        with stranger:
            from_stranger = stranger.get(f"{server.url}/health/live", headers=forwarded)
    assert from_proxy.headers["strict-transport-security"] == "max-age=31536000"
    assert from_stranger.status_code == 200
    assert "strict-transport-security" not in from_stranger.headers
