"""`OperatorRoutesMiddleware`: the operator's paths go to its own routes, everything else to the app."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from lastro.http.operator_routes import OperatorRoutesMiddleware
from tests.support.asgi import lifespan_through

pytestmark = pytest.mark.anyio


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse(f"app {scope['path']}")(scope, receive, send)


async def operator(request: Request) -> Response:
    return PlainTextResponse(f"operator {request.url.path}")


def middleware() -> OperatorRoutesMiddleware:
    routes = [Route("/metrics", operator), Route("/admin/assets/{name}", operator)]
    return OperatorRoutesMiddleware(
        application, routes=routes, paths=["/metrics"], prefixes=["/admin/assets/"]
    )


async def get(path: str) -> str:
    transport = httpx.ASGITransport(app=middleware())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return (await http.get(path)).text


async def test_an_operator_path_goes_to_its_route() -> None:
    """/metrics is answered by the operator's route, the application never sees it."""
    assert await get("/metrics") == "operator /metrics"


async def test_a_path_under_a_prefix_goes_to_its_route() -> None:
    """An asset under the prefix is the operator's."""
    assert await get("/admin/assets/app.js") == "operator /admin/assets/app.js"


async def test_every_other_path_goes_to_the_application() -> None:
    """A path that only starts like an operator's (`/metricsx`) is the application's."""
    assert [await get(path) for path in ("/orders/1", "/metricsx")] == ["app /orders/1", "app /metricsx"]


async def test_a_path_the_operator_routes_nowhere_goes_on_to_the_application() -> None:
    """Under the prefix but matching no route: the application answers (its own 404, problem+json)."""
    assert await get("/admin/assets/a/b") == "app /admin/assets/a/b"


async def test_lifespan_messages_pass_through() -> None:
    """A lifespan scope reaches the application with the server's own receive and send."""
    through = await lifespan_through(lambda app: OperatorRoutesMiddleware(app, routes=[], paths=["/m"]))
    assert through == [{"type": "lifespan.startup"}]
