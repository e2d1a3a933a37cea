"""Give every request an id: accept a well-formed `X-Request-ID`, else generate one; echo it back.

Given `security_headers` (`lastro.http.security_headers`), it also adds those to every response, in the
same pass over the status line.

The id is bound in a context variable, so every log line written while serving the request carries it; so
is the trace id of a valid W3C `traceparent`, tracing on or off (with tracing on, the request's span binds
its own ids over it, in `lastro.http.tracing`).
"""

from __future__ import annotations

import re
from contextvars import ContextVar

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastro.http.security_headers import SecurityHeaders
from lastro.http.traceparent import TRACEPARENT_HEADER, trace_id_of
from lastro.ids import random_hex

__all__ = ["REQUEST_ID_HEADER", "RequestIdMiddleware", "current_request_id"]

REQUEST_ID_HEADER = "x-request-id"
_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_READ = frozenset((_HEADER_BYTES, TRACEPARENT_HEADER))
# Letters, digits and a few separators: safe to log and to echo, long enough for a UUID or trace id.
_WELL_FORMED = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:\-]{7,127}")

_request_id: ContextVar[str | None] = ContextVar("lastro_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return _request_id.get()


def _incoming(scope: Scope) -> tuple[str | None, str | None]:
    """The well-formed request id and the caller's trace id, each read from the first header of its name."""
    raw_id = raw_trace = None
    for name, value in scope["headers"]:
        if name in _READ:  # one set lookup for the many headers that are neither
            if name == _HEADER_BYTES:
                raw_id = value if raw_id is None else raw_id
            else:
                raw_trace = value if raw_trace is None else raw_trace
    request_id = raw_id.decode("ascii") if raw_id is not None and _WELL_FORMED.fullmatch(raw_id) else None
    return request_id, None if raw_trace is None else trace_id_of(raw_trace)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, *, security_headers: SecurityHeaders | None = None) -> None:
        self.app = app
        # Added in the same pass as the id (lastro's stack does): one `send` wrapper instead of two.
        self.security_headers = security_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, trace_id = _incoming(scope)
        request_id = request_id or random_hex()
        _request_id.set(request_id)
        if trace_id is None:
            structlog.contextvars.bind_contextvars(request_id=request_id)
        else:
            structlog.contextvars.bind_contextvars(request_id=request_id, trace_id=trace_id)

        header = (_HEADER_BYTES, request_id.encode("ascii"))
        security_headers = self.security_headers

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}  # one pass, for both checks
                if _HEADER_BYTES in present:
                    headers = [item for item in headers if item[0].lower() != _HEADER_BYTES]
                if security_headers is not None:
                    security_headers.add(headers, scope, present)
                headers.append(header)
                message["headers"] = headers
            await send(message)

        # The server runs each request in a task of its own, so the bound id cannot leak to another request.
        await self.app(scope, receive, send_with_id)
