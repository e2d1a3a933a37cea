"""RequestIdMiddleware: keep a well-formed X-Request-ID, replace a malformed one, echo it, bind it in logs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from lastro.http.request_id import RequestIdMiddleware, current_request_id
from lastro.http.security_headers import SecurityHeaders
from lastro.observability.logging import configure_logging, get_logger
from tests.support.asgi import echo, lifespan_through, post_through

pytestmark = pytest.mark.anyio

GENERATED = re.compile(r"[0-9a-f]{32}")
logger = get_logger("tests.request_id")

ReadLogs = Callable[[], list[dict[str, Any]]]


def capture_json_logs(capsys: pytest.CaptureFixture[str]) -> ReadLogs:
    """lastro's JSON logging onto the captured stdout (call it in the test body, where capsys is active)."""
    configure_logging("INFO", "json")
    return lambda: [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def make_app() -> RequestIdMiddleware:
    app = FastAPI()

    @app.get("/id")
    async def seen_id() -> dict[str, str | None]:
        logger.info("handler ran")
        return {"request_id": current_request_id()}

    return RequestIdMiddleware(app)


async def get(headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/id", headers=headers)


@pytest.mark.parametrize(
    "incoming",
    ["trace-0123456789", "0f8fad5b-d9cb-469f-a165-70867728950e", "a1b2c3d4", "span.id:1_2-3", "x" * 128],
)
async def test_well_formed_id_is_accepted_and_echoed(incoming: str) -> None:
    """A well-formed X-Request-ID is kept, echoed in the response and seen by the handler."""
    response = await get({"X-Request-ID": incoming})
    assert response.headers["x-request-id"] == incoming
    assert response.json()["request_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["bad id with spaces", "short", "-starts-with-dash", "x" * 129, "quote\"inside'id", "semi;colon;id"],
)
async def test_malformed_id_is_replaced_by_a_generated_one(incoming: str) -> None:
    """An X-Request-ID with unsafe characters or a wrong length is replaced, never echoed."""
    response = await get({"X-Request-ID": incoming})
    echoed = response.headers["x-request-id"]
    assert echoed != incoming
    assert GENERATED.fullmatch(echoed)
    assert response.json()["request_id"] == echoed


async def test_missing_id_is_generated() -> None:
    """Without X-Request-ID a 32-hex-digit id is generated and echoed."""
    response = await get()
    assert GENERATED.fullmatch(response.headers["x-request-id"])
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_each_request_gets_its_own_generated_id() -> None:
    """Two requests without an id get two different ids."""
    first, second = await get(), await get()
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_the_id_is_bound_in_log_lines_written_while_serving(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A log line written by the handler carries the request id."""
    read_logs = capture_json_logs(capsys)
    await get({"X-Request-ID": "trace-0123456789"})
    line = next(line for line in read_logs() if line["event"] == "handler ran")
    assert line["request_id"] == "trace-0123456789"


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_the_callers_trace_id_is_bound_in_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """A valid W3C traceparent puts its trace id in the lines written while serving, tracing or not."""
    read_logs = capture_json_logs(capsys)
    await get({"traceparent": TRACEPARENT})
    line = next(line for line in read_logs() if line["event"] == "handler ran")
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"


async def test_a_malformed_traceparent_binds_no_trace_id(capsys: pytest.CaptureFixture[str]) -> None:
    """A traceparent that is not W3C trace context leaves the lines without a trace id."""
    read_logs = capture_json_logs(capsys)
    await get({"traceparent": "00-0af7651916cd43dd-b7ad6b7169203331-01", "x-request-id": "trace-0123456789"})
    line = next(line for line in read_logs() if line["event"] == "handler ran")
    assert "trace_id" not in line


async def test_the_first_request_id_header_decides() -> None:
    """With two X-Request-ID headers, the first is read, as before traceparent was read alongside."""
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        headers = [("x-request-id", "first-id-12345"), ("x-request-id", "second-id-12345")]
        response = await client.get("/id", headers=headers)
    assert response.json()["request_id"] == "first-id-12345"


async def test_non_http_scopes_pass_through_untouched() -> None:
    """A lifespan scope reaches the application without an id."""
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await RequestIdMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


async def test_the_request_body_reaches_the_application() -> None:
    """The request's body passes through unchanged, and the answer carries an id."""
    response = await post_through(RequestIdMiddleware(echo), b"payload")
    assert (response.content, len(response.headers["x-request-id"])) == (b"payload", 32)


async def test_an_id_the_application_set_is_replaced_by_the_request_id() -> None:
    """A response that sets X-Request-ID itself, in any case, carries the request's id alone."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"X-Request-ID", b"from-the-app"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=RequestIdMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/", headers={"x-request-id": "incoming-id-1234"})
    assert response.headers.get_list("x-request-id") == ["incoming-id-1234"]
    assert response.headers["content-type"] == "text/plain"


async def test_a_response_without_headers_gets_the_id() -> None:
    """A response start that lists no headers at all still carries the id."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=RequestIdMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/", headers={"x-request-id": "incoming-id-1234"})
    assert response.headers["x-request-id"] == "incoming-id-1234"


async def test_given_security_headers_a_response_carries_them_and_the_id() -> None:
    """With `security_headers`, the id and the security headers go out together, the id last."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b""})

    layer = RequestIdMiddleware(app, security_headers=SecurityHeaders(referrer_policy="same-origin"))
    transport = httpx.ASGITransport(app=layer)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/", headers={"x-request-id": "incoming-id-1234"})
    assert [name for name, _ in response.headers.items()] == [
        "content-type",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "x-request-id",
    ]


async def test_given_security_headers_one_the_application_set_is_kept() -> None:
    """A security header the application set stays as it set it, beside the others and the id."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"X-Frame-Options", b"SAMEORIGIN"), (b"X-Request-ID", b"from-the-app")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=RequestIdMiddleware(app, security_headers=SecurityHeaders()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/", headers={"x-request-id": "incoming-id-1234"})
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers.get_list("x-request-id") == ["incoming-id-1234"]


async def test_lifespan_messages_pass_through_with_the_servers_channels() -> None:
    """A lifespan scope reaches the application with the server's own receive and send."""
    assert await lifespan_through(RequestIdMiddleware) == [{"type": "lifespan.startup"}]
