"""A server span per HTTP request, following OpenTelemetry's HTTP semantic conventions (`TRACING` on).

The caller's W3C `traceparent` and `tracestate` are read by OpenTelemetry's propagator (the one
`OTEL_PROPAGATORS` names, W3C trace context by default), so the span continues the caller's trace. It is
named `GET /orders/{order_id}` once the router has matched, carries `http.request.method`, `url.path`,
`url.scheme`, `http.route` and `http.response.status_code` (never the query string, which may hold
secrets), and a 5xx or an exception marks it as an error. While it is current, log lines carry its
`trace_id` and `span_id`. `install()` adds this layer only with tracing on: with `TRACING=off` a request
never passes through it, and the module is not even imported.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import propagate
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastro.observability.requests import route_template
from lastro.observability.tracing import Tracing, bind_span, error_type

__all__ = ["TracingMiddleware"]

Headers = Iterable[tuple[bytes, bytes]]
# The methods the conventions name; any other is `_OTHER`, and its span is named `HTTP`.
_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)


class _ScopeHeaders(Getter[Headers]):
    """The propagator's view of an ASGI scope's header list (names arrive in lower case)."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [value.decode("latin-1") for header, value in carrier if header == name]
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [header.decode("latin-1") for header, _ in carrier]


_SCOPE_HEADERS = _ScopeHeaders()


class TracingMiddleware:
    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = self.tracing.tracer  # None before start-up and after shutdown
        if scope["type"] != "http" or tracer is None:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        known = method if method in _METHODS else "_OTHER"
        name = method if known == method else "HTTP"
        attributes = {
            "http.request.method": known,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
        }
        if known != method:
            attributes["http.request.method_original"] = method
        parent = propagate.extract(scope["headers"], getter=_SCOPE_HEADERS)
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracer.start_as_current_span(
            name,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,  # the log line of the error has its traceback, and the span its ids
            set_status_on_exception=False,
        ) as span:
            bind_span(span)
            try:
                await self.app(scope, receive, send_status)
            except Exception as error:
                span.set_attribute("error.type", error_type(error))
                span.set_status(StatusCode.ERROR)
                raise
            finally:
                route = route_template(scope)
                if route is not None:
                    span.update_name(f"{name} {route}")
                    span.set_attribute("http.route", route)
                if status:
                    span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_attribute("error.type", str(status))
                    span.set_status(StatusCode.ERROR)
