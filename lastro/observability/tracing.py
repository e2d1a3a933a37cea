"""Traces with OpenTelemetry when `TRACING` is on (the `tracing` extra): what the rest of lastro calls.

- `check_tracing(settings)`: one line naming `TRACING` and the extra to install, when the SDK is missing.
- `Tracing`: the service's tracer provider, built at start-up (`start`) and flushed at shutdown; the request
  middleware (`lastro.http.tracing`) and the units of work (`Transactions(unit_spans=tracing.unit)`) take
  their spans from it.
- `bind_span(span)`: the span's `trace_id` and `span_id` in every log line written while it is current.

The provider is the service's own, not OpenTelemetry's global one: FastAPI starts request spans of its own as
soon as a global provider is registered (two server spans a request), and a global provider can be set once
a process, which no lifespan could then own. OpenTelemetry is imported by `start()` and the spans only: with
`TRACING=off`, never.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import structlog

from lastro._version import __version__
from lastro.errors import ConfigurationError
from lastro.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

__all__ = ["INSTALL_TRACING", "Tracing", "bind_span", "check_tracing", "error_type"]

INSTALL_TRACING = "pip install 'lastro[tracing]' (from a clone of lastro: pip install -e '.[tracing]')"
_SDK = "opentelemetry.sdk"
_OTLP = "opentelemetry.exporter.otlp.proto.http"


def check_tracing(settings: Settings, *, exporter_given: bool = False) -> None:
    """Raise `ConfigurationError` when `TRACING` is on and a package it needs is not installed."""
    if settings.TRACING == "off":
        return
    needed = [_SDK] if exporter_given or settings.TRACING == "console" else [_SDK, _OTLP]
    for module in needed:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:  # a parent package is missing too
            found = False
        if not found:
            raise ConfigurationError(
                f"TRACING={settings.TRACING} needs the tracing extra, which is not installed "
                f"(no module {module}): {INSTALL_TRACING}"
            )


def bind_span(span: Span) -> None:
    """Put the span's ids in the log context: every line written from here on in this context carries them."""
    structlog.contextvars.bind_contextvars(**_ids(span))


def _ids(span: Span) -> dict[str, str]:
    from opentelemetry.trace import format_span_id, format_trace_id

    context = span.get_span_context()
    return {"trace_id": format_trace_id(context.trace_id), "span_id": format_span_id(context.span_id)}


def error_type(error: BaseException) -> str:
    """`error.type` of OpenTelemetry's conventions: the exception's fully qualified type."""
    cls = type(error)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


class Tracing:
    """The spans of one service: a tracer provider from `start()` to `shutdown()`, and its tracer."""

    def __init__(self, settings: Settings, exporter: SpanExporter | None = None) -> None:
        """`exporter` replaces the one `TRACING` names (a test's in-memory exporter, a gRPC one)."""
        self.settings = settings
        self.exporter = exporter
        self.tracer: Tracer | None = None  # None outside start() .. shutdown(): requests then pass untraced
        self._provider: TracerProvider | None = None

    def start(self) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        settings = self.settings
        provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(settings.TRACING_SAMPLE_RATIO)),
            resource=Resource.create(
                {"service.name": settings.SERVICE_NAME, "service.version": settings.SERVICE_VERSION}
            ),
        )
        provider.add_span_processor(self._processor())
        self._provider = provider
        self.tracer = provider.get_tracer("lastro", __version__)

    def _processor(self) -> SpanProcessor:
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )

        if self.exporter is not None:
            return BatchSpanProcessor(self.exporter)
        if self.settings.TRACING == "console":
            # One span a line, on stderr: standard output keeps its log lines alone.
            exporter = ConsoleSpanExporter(out=sys.stderr, formatter=lambda span: span.to_json(None) + "\n")
            return SimpleSpanProcessor(exporter)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return BatchSpanProcessor(OTLPSpanExporter())  # configured by the OTEL_EXPORTER_OTLP_* variables

    def shutdown(self) -> None:
        """Export the spans still queued and stop; blocks up to the exporter's timeout."""
        provider, self._provider, self.tracer = self._provider, None, None
        if provider is not None:
            provider.shutdown()

    @contextmanager
    def unit(self, system: str, mode: str, work: Callable[..., Any]) -> Iterator[None]:
        """The span of one unit of work, `db.read queries.get`, around all its attempts and retries."""
        tracer = self.tracer
        if tracer is None:
            yield
            return
        from opentelemetry.trace import StatusCode

        attributes = {"db.system.name": system}
        span_name = f"db.{mode}"
        qualname = _qualname(work)
        if qualname is not None:
            module = getattr(work, "__module__", None) or ""
            attributes["code.function.name"] = f"{module}.{qualname}" if module else qualname
            # `db.read queries.get`: the module's last part tells which of several `get`s it is.
            span_name += f" {module.rpartition('.')[2]}.{qualname}" if module else f" {qualname}"
        # Exceptions are not recorded: a database error's message can hold the statement's parameters.
        with (
            tracer.start_as_current_span(
                span_name, attributes=attributes, record_exception=False, set_status_on_exception=False
            ) as span,
            structlog.contextvars.bound_contextvars(**_ids(span)),
        ):
            try:
                yield
            except Exception as error:
                span.set_attribute("error.type", error_type(error))
                span.set_status(StatusCode.ERROR)
                raise


def _qualname(work: Callable[..., Any]) -> str | None:
    """`Class.method` or `function` (a nested one without its `<locals>`); None for a lambda."""
    qualname = getattr(work, "__qualname__", None)
    if not isinstance(qualname, str) or "<lambda>" in qualname:
        return None
    return qualname.rpartition("<locals>.")[2]
