"""TrustedHostMiddleware: a Host outside ALLOWED_HOSTS gets 400 problem+json; the probes are exempt."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from lastro.app import create_app
from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.http.trusted_host import TrustedHostMiddleware, host_name
from lastro.settings import get_settings
from tests.support.asgi import lifespan_through
from tests.support.lifespan import running

pytestmark = pytest.mark.anyio

ALLOWED = ["api.example.com", "*.example.org", "[::1]"]


def make_app(allowed_hosts: list[str] = ALLOWED) -> TrustedHostMiddleware:
    app = FastAPI()

    @app.get("/")
    async def index() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/health/{probe}")
    async def probe(probe: str) -> dict[str, str]:
        return {"probe": probe}

    return TrustedHostMiddleware(app, allowed_hosts=allowed_hosts)


async def get(app: object, host: str | None, path: str = "/") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        request = client.build_request("GET", path)
        if host is None:
            del request.headers["host"]
        else:
            request.headers["host"] = host
        return await client.send(request)


@pytest.mark.parametrize(
    "host", ["api.example.com", "API.Example.com:8443", "a.example.org", "x.y.example.org"]
)
async def test_an_allowed_host_is_served(host: str) -> None:
    """Exact names match without case or port; a wildcard matches any depth of subdomain."""
    assert (await get(make_app(), host)).status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.com", "example.org", "api.example.com.evil.com", "notexample.org", ""]
)
async def test_another_host_gets_400_problem_json(host: str) -> None:
    """A name not listed (the wildcard's parent, a longer name, an empty one) is refused with 400."""
    response = await get(make_app(), host)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert "ALLOWED_HOSTS" in response.json()["detail"]


async def test_a_missing_host_gets_400() -> None:
    """A request without any Host header is refused."""
    assert (await get(make_app(), None)).status_code == 400


async def test_an_ipv6_literal_is_matched_without_its_port() -> None:
    """`[::1]:8000` is the listed `[::1]`."""
    assert (await get(make_app(), "[::1]:8000")).status_code == 200


@pytest.mark.parametrize("path", ["/health/live", "/health/ready"])
async def test_the_probes_answer_on_any_host(path: str) -> None:
    """Liveness and readiness answer a probe that calls them as localhost."""
    assert (await get(make_app(), "localhost:8000", path)).status_code == 200


async def test_health_detail_is_not_exempt() -> None:
    """Only the two probes are exempt: /health itself checks the Host."""
    assert (await get(make_app(), "localhost", "/health/detail")).status_code == 400


async def test_a_star_allows_any_host() -> None:
    """`*` in the list turns the check off."""
    assert (await get(make_app(["api.example.com", "*"]), "anything.test")).status_code == 200


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (b"Api.Example.COM", "api.example.com"),
        (b"h:80", "h"),
        (b"[::1]:80", "::1"),
        (b"h:x", "h:x"),
        (b"[::1", "[::1"),
    ],
)
def test_host_name_drops_the_port_and_case(value: bytes, name: str) -> None:
    """The name compared is lower-case and without a numeric port; IPv6 loses its brackets."""
    assert host_name(value) == name


async def test_a_websocket_on_another_host_is_closed() -> None:
    """A WebSocket handshake with a foreign Host is closed before it is accepted."""
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not reached")

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "websocket", "path": "/ws", "headers": [(b"host", b"evil.com")]}
    await TrustedHostMiddleware(app, allowed_hosts=ALLOWED)(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_create_app_checks_the_host_but_not_the_probes(sqlite_url: str) -> None:
    """Through create_app with ALLOWED_HOSTS set, a foreign Host is refused while live and ready answer."""
    app = create_app(get_settings(DATABASE_URL=sqlite_url, ALLOWED_HOSTS="api.example.com"))
    async with running(app):
        assert (await get(app, "evil.com", "/health/live")).status_code == 200
        assert (await get(app, "localhost", "/health/ready")).status_code == 200
        assert (await get(app, "evil.com", "/nothing")).status_code == 400
        assert (await get(app, "api.example.com", "/nothing")).status_code == 404


async def test_lifespan_messages_pass_through_untouched() -> None:
    """A lifespan scope reaches the application with the server's own receive and send."""
    assert await lifespan_through(lambda app: TrustedHostMiddleware(app, allowed_hosts=ALLOWED)) == [
        {"type": "lifespan.startup"}
    ]
