"""trace_id_of: the trace id of a W3C traceparent, the same one OpenTelemetry's propagator reads."""

from __future__ import annotations

import pytest
from opentelemetry.trace import format_trace_id, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from lastro.http.traceparent import trace_id_of

TRACE = "0af7651916cd43dd8448eb211c80319c"
VALID = f"00-{TRACE}-b7ad6b7169203331-01"

HEADERS = [
    VALID,
    f"00-{TRACE}-b7ad6b7169203331-00",  # not sampled: still the caller's trace
    f" \t{VALID} ",
    f"01-{TRACE}-b7ad6b7169203331-01-what-a-later-version-adds",
    f"00-{TRACE}-b7ad6b7169203331-01-extra",  # version 00 has exactly four fields
    f"ff-{TRACE}-b7ad6b7169203331-01",
    f"00-{'0' * 32}-b7ad6b7169203331-01",
    f"00-{TRACE}-{'0' * 16}-01",
    VALID.upper(),
    f"00-{TRACE[:-1]}-b7ad6b7169203331-01",
    f"00-{TRACE}-b7ad6b7169203331",
    f"00_{TRACE}_b7ad6b7169203331_01",
    f"01-{TRACE}-b7ad6b7169203331-01-{'x' * 500}",  # longer than 512 characters
    "",
    "garbage",
]


def propagator_trace_id(header: str) -> str | None:
    context = TraceContextTextMapPropagator().extract({"traceparent": header})
    span_context = get_current_span(context).get_span_context()
    return format_trace_id(span_context.trace_id) if span_context.is_valid else None


@pytest.mark.parametrize("header", HEADERS)
def test_the_trace_id_is_the_one_opentelemetry_reads(header: str) -> None:
    """Valid or not, a header gives the trace id OpenTelemetry's W3C propagator reads from it, if any."""
    assert trace_id_of(header.encode("latin-1")) == propagator_trace_id(header)


def test_a_valid_header_gives_its_trace_id() -> None:
    """The 32 hex digits of the second field."""
    assert trace_id_of(VALID.encode()) == TRACE


def test_an_invalid_header_gives_none() -> None:
    """A header that is not a traceparent gives no trace id."""
    assert trace_id_of(b"00-not-a-trace") is None
