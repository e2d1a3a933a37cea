"""TracingMiddleware: one server span per request, in OpenTelemetry's HTTP conventions, continuing the
caller's W3C trace; its ids in the log lines written while it is current.

Spans are read from the OpenTelemetry SDK's in-memory exporter, which `Tracing` takes in place of the one
TRACING names, after `shutdown()` has exported them.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id
from starlette.types import ASGIApp, Receive, Scope, Send

from lastro.http.access_log import AccessLogMiddleware
from lastro.http.tracing import TracingMiddleware
from lastro.observability.logging import configure_logging, get_logger
from lastro.observability.tracing import Tracing
from lastro.settings import get_settings
from tests.support.asgi import lifespan_through

pytestmark = pytest.mark.anyio

TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
logger = get_logger("tests.tracing")


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        logger.info("handler ran")
        return {"id": item_id}

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, "short and stout")

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise HTTPException(503, "come back later")

    return app


async def call(app: ASGIApp, method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.request(method, path, headers=headers)


def spans(tracing: Tracing, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    tracing.shutdown()  # exports what the batch processor still holds
    return list(exporter.get_finished_spans())


async def test_a_request_is_one_server_span_named_after_its_route(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    """`GET /items/{item_id}`: a server span with the method, path, scheme, route and status attributes."""
    await call(TracingMiddleware(make_app(), tracing), "GET", "/items/7")
    (span,) = spans(tracing, exporter)
    assert (span.name, span.kind, span.status.status_code) == (
        "GET /items/{item_id}",
        SpanKind.SERVER,
        StatusCode.UNSET,
    )
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.path": "/items/7",
        "url.scheme": "http",
        "http.route": "/items/{item_id}",
        "http.response.status_code": 200,
    }


async def test_the_callers_traceparent_makes_the_span_its_child(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    """With a W3C traceparent (and tracestate), the span joins the caller's trace under the caller's span."""
    headers = {"traceparent": f"00-{TRACE}-{CALLER_SPAN}-01", "tracestate": "vendor=value"}
    await call(TracingMiddleware(make_app(), tracing), "GET", "/items/7", headers)
    (span,) = spans(tracing, exporter)
    assert span.parent is not None
    assert span.parent.is_remote
    assert format_trace_id(span.context.trace_id) == TRACE
    assert format_span_id(span.parent.span_id) == CALLER_SPAN
    assert span.context.trace_state.get("vendor") == "value"


async def test_without_a_traceparent_the_span_starts_a_trace(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    """A request without trace context is the root of a new trace."""
    await call(TracingMiddleware(make_app(), tracing), "GET", "/items/7", {"traceparent": "garbage"})
    (span,) = spans(tracing, exporter)
    assert span.parent is None


async def test_a_server_error_marks_the_span_as_an_error(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    """A 5xx answer: status ERROR and `error.type` the status code; a 4xx leaves the status unset."""
    app = TracingMiddleware(make_app(), tracing)
    await call(app, "GET", "/unavailable")
    await call(app, "GET", "/teapot")
    unavailable, teapot = spans(tracing, exporter)
    assert (unavailable.status.status_code, (unavailable.attributes or {})["error.type"]) == (
        StatusCode.ERROR,
        "503",
    )
    assert (teapot.status.status_code, (teapot.attributes or {}).get("error.type")) == (
        StatusCode.UNSET,
        None,
    )


async def test_an_exception_marks_the_span_with_its_type(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    """An exception that leaves the application before any answer: status ERROR, `error.type` its type."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise LookupError("nothing here")

    with pytest.raises(LookupError):
        await call(TracingMiddleware(app, tracing), "GET", "/")
    (span,) = spans(tracing, exporter)
    assert (span.name, span.status.status_code) == ("GET", StatusCode.ERROR)
    assert (span.attributes or {})["error.type"] == "LookupError"


async def test_an_unknown_method_is_other(tracing: Tracing, exporter: InMemorySpanExporter) -> None:
    """A method the conventions do not name is `_OTHER`, its span `HTTP`, the method kept as original."""
    await call(TracingMiddleware(make_app(), tracing), "PURGE", "/items/7")
    (span,) = spans(tracing, exporter)
    assert span.name == "HTTP /items/{item_id}"
    attributes = span.attributes or {}
    assert (attributes["http.request.method"], attributes["http.request.method_original"]) == (
        "_OTHER",
        "PURGE",
    )


async def test_log_lines_and_the_access_line_carry_the_spans_ids(
    tracing: Tracing, exporter: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    """The handler's line and the access line, both written inside the span, carry its trace and span id."""
    configure_logging("INFO", "json")
    await call(TracingMiddleware(AccessLogMiddleware(make_app()), tracing), "GET", "/items/7")
    lines: list[dict[str, Any]] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (span,) = spans(tracing, exporter)
    ids = {
        "trace_id": format_trace_id(span.context.trace_id),
        "span_id": format_span_id(span.context.span_id),
    }
    handler = next(line for line in lines if line["event"] == "handler ran")
    access = next(line for line in lines if line["logger"] == "lastro.access")
    assert {key: handler[key] for key in ids} == {key: access[key] for key in ids} == ids


async def test_before_start_up_requests_pass_untraced(exporter: InMemorySpanExporter) -> None:
    """Before `start()` (and after `shutdown()`) there is no tracer: the request is served, no span made."""
    tracing = Tracing(get_settings(TRACING="otlp"), exporter)
    response = await call(TracingMiddleware(make_app(), tracing), "GET", "/items/7")
    assert (response.status_code, exporter.get_finished_spans()) == (200, ())


async def test_lifespan_messages_pass_through(tracing: Tracing) -> None:
    """A lifespan scope reaches the application with the server's own receive and send."""
    assert await lifespan_through(lambda app: TracingMiddleware(app, tracing)) == [
        {"type": "lifespan.startup"}
    ]
