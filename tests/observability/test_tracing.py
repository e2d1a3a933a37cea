"""Tracing: the provider from start to shutdown, the span of a unit of work, sampling, the console exporter,
and the one line that names the missing extra."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, format_span_id
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import Connection, text

from lastro.db.engine import Database
from lastro.db.transactions import Transactions
from lastro.errors import ConfigurationError
from lastro.observability.logging import configure_logging, get_logger
from lastro.observability.tracing import Tracing, check_tracing
from lastro.settings import get_settings

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
logger = get_logger("tests.tracing")


@pytest.fixture
def transactions(sqlite_url: str, tracing: Tracing) -> Iterator[Transactions]:
    database = Database(sqlite_url)
    transactions = Transactions(database, unit_spans=tracing.unit)
    yield transactions
    transactions.close()
    database.dispose()


def spans(tracing: Tracing, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    tracing.shutdown()  # exports what the batch processor still holds
    return list(exporter.get_finished_spans())


def answer(connection: Connection) -> int:
    logger.info("unit ran")
    value: int = connection.execute(text("SELECT 42")).scalar_one()
    return value


def fail(connection: Connection, reason: str) -> None:
    raise LookupError(reason)


async def test_a_unit_of_work_is_a_child_span_of_the_current_one(
    tracing: Tracing, exporter: InMemorySpanExporter, transactions: Transactions
) -> None:
    """A unit run inside a span is its child, named after the mode and the unit's function."""
    assert tracing.tracer is not None
    with tracing.tracer.start_as_current_span("GET /answer"):
        assert await transactions.read(answer) == 42
    unit, request = spans(tracing, exporter)
    assert unit.name == "db.read test_tracing.answer"
    assert unit.parent is not None
    assert unit.parent.span_id == request.context.span_id
    assert dict(unit.attributes or {}) == {
        "db.system.name": "sqlite",
        "code.function.name": "tests.observability.test_tracing.answer",
    }


async def test_a_unit_with_arguments_is_named_after_its_function(
    tracing: Tracing, exporter: InMemorySpanExporter, transactions: Transactions
) -> None:
    """`write(work, *args)` binds the arguments, and the span still has `work`'s name; a lambda none."""
    with pytest.raises(LookupError):
        await transactions.write(fail, "no such row")
    await transactions.read(lambda connection: connection.execute(text("SELECT 1")).scalar_one())
    failed, anonymous = spans(tracing, exporter)
    assert (failed.name, anonymous.name) == ("db.write test_tracing.fail", "db.read")


async def test_a_failed_unit_marks_its_span_as_an_error_without_the_message(
    tracing: Tracing, exporter: InMemorySpanExporter, transactions: Transactions
) -> None:
    """A unit that raises: status ERROR, `error.type` its type; no event holds its message (may hold data)."""
    with pytest.raises(LookupError):
        await transactions.write(fail, "secret parameter")
    (span,) = spans(tracing, exporter)
    assert (span.status.status_code, (span.attributes or {})["error.type"]) == (
        StatusCode.ERROR,
        "LookupError",
    )
    assert span.events == ()


async def test_lines_inside_a_unit_carry_its_span_id_and_the_request_s_after(
    tracing: Tracing,
    exporter: InMemorySpanExporter,
    transactions: Transactions,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A line written by the unit carries the unit's span id; once it returns, the enclosing ids are back."""
    configure_logging("INFO", "json")
    structlog.contextvars.bind_contextvars(span_id="enclosing")
    await transactions.read(answer)
    logger.info("after the unit")
    structlog.contextvars.unbind_contextvars("span_id", "trace_id")
    lines: list[dict[str, Any]] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (unit,) = spans(tracing, exporter)
    by_event = {line["event"]: line for line in lines}
    assert by_event["unit ran"]["span_id"] == format_span_id(unit.context.span_id)
    assert by_event["after the unit"]["span_id"] == "enclosing"


async def test_a_sample_ratio_of_zero_records_no_new_trace(exporter: InMemorySpanExporter) -> None:
    """TRACING_SAMPLE_RATIO=0: a trace that starts here is not recorded."""
    tracing = Tracing(get_settings(TRACING="otlp", TRACING_SAMPLE_RATIO=0), exporter)
    tracing.start()
    assert tracing.tracer is not None
    with tracing.tracer.start_as_current_span("GET /") as span:
        assert not span.is_recording()
    assert spans(tracing, exporter) == []


async def test_a_callers_sampled_trace_is_recorded_whatever_the_ratio(exporter: InMemorySpanExporter) -> None:
    """TRACING_SAMPLE_RATIO=0 still records a trace whose caller's traceparent says it is sampled."""
    tracing = Tracing(get_settings(TRACING="otlp", TRACING_SAMPLE_RATIO=0), exporter)
    tracing.start()
    assert tracing.tracer is not None
    caller = TraceContextTextMapPropagator().extract({"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"})
    with tracing.tracer.start_as_current_span("GET /", context=caller) as span:
        assert span.is_recording()
    assert [span.name for span in spans(tracing, exporter)] == ["GET /"]


def test_the_console_exporter_writes_one_span_a_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """TRACING=console: each span is one JSON line on standard error; standard output keeps the logs."""
    tracing = Tracing(get_settings(TRACING="console", SERVICE_NAME="orders"))
    tracing.start()
    assert tracing.tracer is not None
    with tracing.tracer.start_as_current_span("GET /orders"):
        pass
    tracing.shutdown()
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    span = json.loads(line)
    assert (span["name"], span["resource"]["attributes"]["service.name"]) == ("GET /orders", "orders")
    assert captured.out == ""


def test_tracing_off_needs_nothing() -> None:
    """TRACING=off is accepted whatever is installed."""
    check_tracing(get_settings())


def test_tracing_on_with_the_extra_installed_passes_the_check() -> None:
    """With the tracing extra installed, TRACING=otlp and TRACING=console pass."""
    check_tracing(get_settings(TRACING="otlp"))
    check_tracing(get_settings(TRACING="console"))


def test_tracing_on_without_the_sdk_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the OpenTelemetry SDK, TRACING=console is refused: the setting, the module, the install."""
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)  # what an environment without it looks like
    with pytest.raises(ConfigurationError) as refused:
        check_tracing(get_settings(TRACING="console"))
    assert str(refused.value) == (
        "TRACING=console needs the tracing extra, which is not installed (no module opentelemetry.sdk): "
        "pip install 'lastro[tracing]' (from a clone of lastro: pip install -e '.[tracing]')"
    )


def test_otlp_without_its_exporter_is_refused_unless_one_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """TRACING=otlp needs the OTLP exporter package, unless the application passes an exporter of its own."""
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http", None)
    with pytest.raises(ConfigurationError, match=r"no module opentelemetry\.exporter\.otlp\.proto\.http"):
        check_tracing(get_settings(TRACING="otlp"))
    check_tracing(get_settings(TRACING="otlp"), exporter_given=True)


def test_create_app_without_the_extra_fails_with_the_one_line(tmp_path: Path) -> None:
    """In a process where the packages of the extra cannot be imported (FastAPI's own opentelemetry-api
    still can), create_app with TRACING on raises the one-line ConfigurationError."""
    code = (
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith(('opentelemetry.sdk', 'opentelemetry.exporter')):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "import lastro\n"
        "try:\n"
        "    lastro.create_app(lastro.get_settings(ENVIRONMENT='development', TRACING='otlp'))\n"
        "except lastro.ConfigurationError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, cwd=tmp_path
    )
    assert result.stdout.splitlines() == [
        "TRACING=otlp needs the tracing extra, which is not installed (no module opentelemetry.sdk): "
        "pip install 'lastro[tracing]' (from a clone of lastro: pip install -e '.[tracing]')"
    ]
