"""RFC 9457 problem+json: the document's shape, from a FastAPI handler and straight from middleware."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from lastro.http.problem import PROBLEM_CONTENT_TYPE, ProblemResponse, problem_document, send_problem
from lastro.http.request_id import RequestIdMiddleware

pytestmark = pytest.mark.anyio


def make_app() -> ASGIApp:
    app = FastAPI()

    @app.get("/conflict")
    async def conflict() -> ProblemResponse:
        return ProblemResponse(409, "order 7 was changed", headers={"ETag": '"v2"'}, order_id=7)

    @app.get("/bare")
    async def bare() -> ProblemResponse:
        return ProblemResponse(404)

    return RequestIdMiddleware(app)


async def raw_problem(scope: Scope, receive: Receive, send: Send) -> None:
    await send_problem(send, 503, "try later", headers={"Retry-After": "5"})


async def get(app: ASGIApp, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers={"X-Request-ID": "trace-0123456789"})


async def test_problem_response_has_the_rfc_9457_members() -> None:
    """A ProblemResponse body has type, title, status, detail and the request id."""
    response = await get(make_app(), "/conflict")
    body = response.json()
    assert response.status_code == 409
    assert body["type"] == "about:blank"
    assert body["title"] == "Conflict"
    assert body["status"] == 409
    assert body["detail"] == "order 7 was changed"
    assert body["request_id"] == "trace-0123456789"


async def test_problem_response_content_type_is_problem_json() -> None:
    """A ProblemResponse is served as application/problem+json."""
    response = await get(make_app(), "/conflict")
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE


async def test_problem_response_keeps_extension_members_and_headers() -> None:
    """Extension members go into the body and headers into the response."""
    response = await get(make_app(), "/conflict")
    assert response.json()["order_id"] == 7
    assert response.headers["etag"] == '"v2"'


async def test_problem_without_detail_omits_it() -> None:
    """Without a detail the member is absent, and the title is the status phrase."""
    body = (await get(make_app(), "/bare")).json()
    assert "detail" not in body
    assert body["title"] == "Not Found"


async def test_send_problem_answers_from_raw_asgi() -> None:
    """send_problem writes status, problem+json body, content-length and extra headers."""
    response = await get(raw_problem, "/anything")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["retry-after"] == "5"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.json() == {
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "try later",
    }


async def test_send_problem_carries_the_request_id_when_bound() -> None:
    """Behind RequestIdMiddleware, a raw problem carries the request id too."""
    response = await get(RequestIdMiddleware(raw_problem), "/anything")
    assert response.json()["request_id"] == "trace-0123456789"


def test_problem_document_does_not_overwrite_an_explicit_request_id() -> None:
    """An explicit request_id member wins over the bound one."""
    assert problem_document(400, "bad", request_id="given")["request_id"] == "given"
