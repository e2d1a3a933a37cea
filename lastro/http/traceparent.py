"""The trace id of a W3C `traceparent` header, read without OpenTelemetry.

With `TRACING=off` a request still carries its caller's trace id into the log lines (`RequestIdMiddleware`
binds it), at the cost of this one match, and only when the header is there. The rules are those of
OpenTelemetry's `TraceContextTextMapPropagator`, which reads the header when tracing is on:
tests/http/test_traceparent.py holds the two to the same answers.
"""

from __future__ import annotations

import re

__all__ = ["TRACEPARENT_HEADER", "trace_id_of"]

TRACEPARENT_HEADER = b"traceparent"
_MAXIMUM_LENGTH = 512
# version-trace_id-parent_id-flags, and what a later version may add after a dash.
_TRACEPARENT = re.compile(rb"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(?:(-.*)|[ \t]*)")
_ZERO_TRACE = b"0" * 32
_ZERO_PARENT = b"0" * 16


def trace_id_of(header: bytes) -> str | None:
    """The 32 hex digits of a valid `traceparent`'s trace id; None for a malformed or invalid header."""
    if len(header) > _MAXIMUM_LENGTH:
        return None
    found = _TRACEPARENT.fullmatch(header)
    if found is None:
        return None
    version, trace_id, parent_id, extra = found.groups()
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_PARENT or version == b"ff":
        return None
    if version == b"00" and extra:  # version 00 has exactly four fields
        return None
    return trace_id.decode("ascii")
