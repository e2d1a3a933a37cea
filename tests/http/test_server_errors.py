"""ServerErrorMiddleware: an unhandled exception is a 500 problem+json; its traceback goes to the log only."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.http.request_id import RequestIdMiddleware
from lastro.http.server_errors import ServerErrorMiddleware
from lastro.observability.logging import configure_logging
from tests.support.asgi import echo, lifespan_through, post_through

pytestmark = pytest.mark.anyio

SECRET = "password=hunter2"  # what an exception message may hold: never for the client


def make_app() -> RequestIdMiddleware:
    app = FastAPI()

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError(f"database said {SECRET}")

    @app.get("/fine")
    async def fine() -> dict[str, bool]:
        return {"ok": True}

    # As lastro installs it: inside FastAPI's own error layer, outside the exception handlers.
    app.add_middleware(ServerErrorMiddleware)
    return RequestIdMiddleware(app)


async def get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers={"X-Request-ID": "trace-0123456789"})


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [line for line in lines if line.get("logger") == "lastro.errors"]


async def test_unhandled_exception_is_a_500_problem() -> None:
    """A route that raises answers 500 application/problem+json with the request id."""
    response = await get("/crash")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert (body["status"], body["title"]) == (500, "Internal Server Error")
    assert body["request_id"] == "trace-0123456789"


async def test_body_holds_no_traceback_nor_exception_text() -> None:
    """The client never sees the traceback or the exception's message."""
    response = await get("/crash")
    assert "Traceback" not in response.text
    assert SECRET not in response.text
    assert "RuntimeError" not in response.text


async def test_traceback_is_logged_with_the_request(capsys: pytest.CaptureFixture[str]) -> None:
    """The error line has the method, path, request id and the full traceback."""
    configure_logging("INFO", "json")
    await get("/crash")
    (line,) = error_lines(capsys)
    assert line["event"] == "unhandled error"
    assert line["level"] == "error"
    assert (line["method"], line["path"]) == ("GET", "/crash")
    assert line["request_id"] == "trace-0123456789"
    assert line["exception"].startswith("Traceback")
    assert "RuntimeError: database said" in line["exception"]


async def test_successful_requests_pass_through(capsys: pytest.CaptureFixture[str]) -> None:
    """A request that does not raise is answered as usual and logs no error."""
    configure_logging("INFO", "json")
    response = await get("/fine")
    assert response.json() == {"ok": True}
    assert error_lines(capsys) == []


async def test_error_after_the_response_started_sends_nothing_more(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Once the status line is out, the error is logged and no second response is started."""

    async def half_answer(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("broken mid-stream")

    sent: list[Message] = []

    async def collect(message: Message) -> None:
        sent.append(message)

    configure_logging("INFO", "json")
    scope = {"type": "http", "method": "GET", "path": "/stream", "headers": []}
    await ServerErrorMiddleware(half_answer)(scope, None, collect)  # type: ignore[arg-type]
    assert [message["type"] for message in sent] == ["http.response.start"]
    assert "RuntimeError: broken mid-stream" in error_lines(capsys)[0]["exception"]


async def test_non_http_scopes_pass_through() -> None:
    """A lifespan scope reaches the application untouched."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await ServerErrorMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


async def test_the_problem_says_the_error_was_logged() -> None:
    """The 500 answer's detail says what happened and that it was logged, nothing more."""
    assert (await get("/crash")).json()["detail"] == "the server hit an unexpected error; it has been logged"


async def test_the_request_body_reaches_the_application() -> None:
    """The request's body passes through unchanged."""
    assert (await post_through(ServerErrorMiddleware(echo), b"payload")).content == b"payload"


async def test_lifespan_messages_pass_through_with_the_servers_channels() -> None:
    """A lifespan scope reaches the application with the server's own receive and send."""
    assert await lifespan_through(ServerErrorMiddleware) == [{"type": "lifespan.startup"}]
