"""create_app with TRACING: a request's server span and its unit of work's child span, exported at shutdown;
with TRACING off, no tracing layer at all, and the caller's trace id still in the access line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id
from sqlalchemy import Connection, text

from lastro import ReadUnit, create_app, get_logger, get_settings
from tests.support.lifespan import running

pytestmark = pytest.mark.anyio

TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE}-b7ad6b7169203331-01"
logger = get_logger("tests.tracing")


def answer(connection: Connection) -> int:
    logger.info("unit ran")
    value: int = connection.execute(text("SELECT 42")).scalar_one()
    return value


def make_app(sqlite_url: str, tracing: str, exporter: InMemorySpanExporter | None = None) -> FastAPI:
    settings = get_settings(DATABASE_URL=sqlite_url, LOG_FORMAT="json", TRACING=tracing)
    app = create_app(settings, span_exporter=exporter)

    @app.get("/answers/{answer_id}")
    async def get_answer(answer_id: int, unit: ReadUnit) -> dict[str, int]:
        return {"answer": await unit.run(answer)}

    return app


async def get(app: FastAPI, path: str) -> httpx.Response:
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path, headers={"traceparent": TRACEPARENT})


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


async def test_a_request_and_its_unit_of_work_are_two_spans_of_the_callers_trace(sqlite_url: str) -> None:
    """One server span for the request, a child span for its unit of work, exported by shutdown."""
    exporter = InMemorySpanExporter()
    response = await get(make_app(sqlite_url, "otlp", exporter), "/answers/1")
    assert response.json() == {"answer": 42}
    unit, request = exporter.get_finished_spans()
    assert (request.name, request.kind) == ("GET /answers/{answer_id}", SpanKind.SERVER)
    assert (request.attributes or {})["http.response.status_code"] == 200
    assert format_trace_id(request.context.trace_id) == format_trace_id(unit.context.trace_id) == TRACE
    assert unit.name == "db.read test_tracing.answer"
    assert unit.parent is not None
    assert unit.parent.span_id == request.context.span_id


async def test_the_access_line_carries_the_request_spans_ids(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """With tracing on, the access line carries the server span's trace id and span id."""
    exporter = InMemorySpanExporter()
    await get(make_app(sqlite_url, "otlp", exporter), "/answers/1")
    access = next(line for line in log_lines(capsys) if line["logger"] == "lastro.access")
    request = next(span for span in exporter.get_finished_spans() if span.kind is SpanKind.SERVER)
    assert (access["trace_id"], access["span_id"]) == (TRACE, format_span_id(request.context.span_id))


async def test_tracing_off_installs_no_tracing_layer(sqlite_url: str) -> None:
    """TRACING=off (the default): the middleware is not in the stack, so a request never passes through it."""
    app = make_app(sqlite_url, "off")
    assert "TracingMiddleware" not in [middleware.cls.__name__ for middleware in app.user_middleware]
    assert app.state.lastro.tracing is None


async def test_tracing_off_still_puts_the_callers_trace_id_in_the_logs(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """With tracing off, a valid traceparent's trace id reaches the access line and the unit's line."""
    await get(make_app(sqlite_url, "off"), "/answers/1")
    lines = log_lines(capsys)
    access = next(line for line in lines if line["logger"] == "lastro.access")
    unit = next(line for line in lines if line["event"] == "unit ran")
    assert access["trace_id"] == unit["trace_id"] == TRACE
    assert "span_id" not in access


def test_tracing_off_loads_no_opentelemetry_sdk(tmp_path: Path) -> None:
    """A service built with TRACING=off loads neither the SDK nor lastro's tracing middleware."""
    code = (
        "import sys, lastro; "
        "lastro.create_app(lastro.get_settings(ENVIRONMENT='development')); "
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'lastro.http.tracing'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, cwd=tmp_path
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
