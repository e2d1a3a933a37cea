"""HTTP protocols that bound a slow client, spare the probes, and stop a worker without resetting anyone.

uvicorn's protocols are subclassed for what uvicorn lacks:

- **Header timeout.** A connection must complete a request's headers within `HEADER_TIMEOUT` of opening,
  or of the end of the previous response; otherwise it gets `408` (if it sent part of a request) and is
  closed. uvicorn's keep-alive timeout still closes a connection that sends nothing after a response,
  sooner; a client sending a byte a second resets that timer each time, and only this one stops it.
- **Connection limit.** uvicorn answers every request with 503 once `MAX_CONNECTIONS` connections are
  open, `/health/live` included, so idle or slow sockets made an orchestrator kill a working worker. The
  limit is applied here instead, sparing `/health`, answered with a problem document.
- **Draining at shutdown.** When a worker stops (recycled after `MAX_REQUESTS`, replaced on SIGHUP,
  stopped), uvicorn closes every connection without a request in progress, including a keep-alive one whose
  client has just sent its next request: that client sees "connection reset". Here a connection without a
  request in progress is kept for a short grace; a request that arrives is served with
  `Connection: close`. The listening socket is already closed, so no new connection reaches the worker.
- **Problem answers below the application.** A request uvicorn cannot parse (a bad request line, an
  invalid header) gets uvicorn's `text/plain` 400; here it gets `application/problem+json`, and 431 when
  its head (request line and headers) is over `MAX_HEAD_BYTES`, which the bytes received while waiting for
  a request's headers are measured against before either parser sees them (httptools has no bound).
- **Lingering close.** Closing a socket with unread request bytes makes the kernel send RST, which can
  destroy the response the client has not read yet. Idle and timed-out connections are closed as nginx
  does: the write side is shut first, what the client still sends is read and dropped, then the socket
  closes once the client closes or after a short linger.
- **Whole responses** (httptools). A response with a `Content-Length` leaves in one write, head and body
  together (`lastro.serve.whole_responses`).

The values come from the uvicorn `Config` the worker is given (`lastro.serve.runner.WorkerConfig`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import weakref
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from lastro.http.in_flight import EXEMPT_PREFIXES
from lastro.http.problem import PROBLEM_CONTENT_TYPE, problem_document, send_problem
from lastro.observability import connections
from lastro.observability.logging import get_logger
from lastro.observability.throttle import LogThrottle
from lastro.serve.whole_responses import HeadWithBody

__all__ = [
    "DRAIN_GRACE",
    "HEADER_TIMEOUT",
    "LINGER",
    "MAX_HEAD_BYTES",
    "DrainingH11Protocol",
    "DrainingHttpToolsProtocol",
    "protocol_path",
]

HEADER_TIMEOUT = 20.0  # seconds, when the config does not say (a plain uvicorn.Config)
MAX_HEAD_BYTES = 32 * 1024  # a request line and headers larger than this are answered 431
DRAIN_GRACE = 1.0  # seconds a connection without a request in progress is kept open at shutdown
LINGER = 2.0  # seconds at most the bytes of a closed connection are read and dropped

logger = get_logger("lastro.serve")
LOG_INTERVAL = 10.0  # seconds: a flood of slow or surplus connections logs one line per kind per interval


def _raw_problem(status: int, detail: str, default_headers: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """A whole HTTP/1.1 problem+json response that closes the connection, written below any ASGI app."""
    body = json.dumps(problem_document(status, detail), separators=(",", ":")).encode()
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
    lines += [name + b": " + value for name, value in default_headers]
    lines += [
        b"content-type: " + PROBLEM_CONTENT_TYPE.encode(),
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


_TIMEOUT_RESPONSE = _raw_problem(408, "the request headers did not arrive in time (HEADER_TIMEOUT)")
_HEAD_TOO_LARGE = "the request line and headers are larger than {} bytes"
_INVALID = "the request is not valid HTTP/1.1"


class _ConnectionLimit:
    """uvicorn's `limit_concurrency` check, made in front of the application, sparing `/health`."""

    def __init__(self, app: ASGIApp, server_state: ServerState, limit: int) -> None:
        self.app = app
        self.server_state = server_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The task running this request is in `tasks` already: uvicorn counted before adding it.
        if (len(self.connections) >= self.limit or len(self.tasks) > self.limit) and not (
            scope["type"] == "http" and scope["path"].startswith(EXEMPT_PREFIXES)
        ):
            if (not_logged := _log_throttle(self.server_state).admit("connection limit")) is not None:
                logger.warning(
                    "connection limit reached",
                    connections=len(self.connections),
                    limit=self.limit,
                    not_logged_since_last=not_logged,
                )
            detail = f"this worker has its maximum of {self.limit} connections open (MAX_CONNECTIONS)"
            await send_problem(send, 503, detail, headers={"Retry-After": "1", "Connection": "close"})
            return
        await self.app(scope, receive, send)


_LIMITED: weakref.WeakKeyDictionary[ServerState, _ConnectionLimit] = weakref.WeakKeyDictionary()
_LOGS: weakref.WeakKeyDictionary[ServerState, LogThrottle] = weakref.WeakKeyDictionary()


def _log_throttle(server_state: ServerState) -> LogThrottle:
    """The log throttle of one server (one worker), shared by all its connections."""
    throttle = _LOGS.get(server_state)
    if throttle is None:
        throttle = _LOGS[server_state] = LogThrottle(LOG_INTERVAL)
    return throttle


class _BoundedConnection:
    """Header timeout, connection limit, drain and lingering close, over either uvicorn protocol."""

    # uvicorn's protocol attributes this mixin works with
    app: Any
    config: Config
    cycle: Any
    flow: Any
    limit_concurrency: int | None
    loop: asyncio.AbstractEventLoop
    server_state: ServerState
    transport: asyncio.Transport

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)  # type: ignore[call-arg]
        connections.watch(server_state.connections)
        self.header_timeout: float = getattr(config, "header_timeout", HEADER_TIMEOUT)
        self.max_head_bytes: int = getattr(config, "max_head_bytes", MAX_HEAD_BYTES)
        self._head_size = 0  # bytes received while waiting for the current request's headers
        self._log = _log_throttle(server_state)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_cycle: Any = None  # the cycle current when the wait for headers began
        self._header_bytes = False
        self._close_timer: asyncio.TimerHandle | None = None
        self._stopping = False
        self._lingering = False
        if self.limit_concurrency is not None:
            limited = _LIMITED.get(server_state)
            if limited is None:
                limited = _LIMITED[server_state] = _ConnectionLimit(
                    self.app, server_state, self.limit_concurrency
                )
            self.app = limited
            self.limit_concurrency = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # read and dropped, so that closing sends no RST
        if self._header_timer is not None and self.cycle is self._header_cycle:
            # Measured before parsing, whichever parser, and however the head is cut into reads.
            end = data.find(b"\r\n\r\n")
            self._head_size += len(data) if end < 0 else end + 4
            if self._head_size > self.max_head_bytes:
                self._refuse(431, _HEAD_TOO_LARGE.format(self.max_head_bytes))
                return
        super().data_received(data)  # type: ignore[misc]
        if self._header_timer is not None:
            if self.cycle is not self._header_cycle:
                self._header_timer.cancel()
                self._header_timer = None
            else:
                self._header_bytes = True
        if self._stopping and self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # arrived during the drain: answered, then the connection closes

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing() and self.cycle.response_complete and not self._stopping:
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._header_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._close_timer = None
        super().connection_lost(exc)  # type: ignore[misc]

    def shutdown(self) -> None:
        self._stopping = True
        if not self._idle():
            super().shutdown()  # type: ignore[misc]
        elif not self.transport.is_closing() and self._close_timer is None:
            self._close_timer = self.loop.call_later(DRAIN_GRACE, self._close_if_idle)

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this in its `except` for a request its parser refused: the exception tells why.
        refused = sys.exception()
        if getattr(refused, "error_status_hint", 400) == 431:  # h11: the head is over its size bound
            self._refuse(431, _HEAD_TOO_LARGE.format(self.max_head_bytes))
        else:
            self._refuse(400, _INVALID)

    def _refuse(self, status: int, detail: str) -> None:
        """Answer a request that never reached the application with a problem, then close."""
        if self.transport.is_closing() or self._lingering:
            return
        if (not_logged := self._log.admit(f"refused {status}")) is not None:
            client = self.transport.get_extra_info("peername")
            logger.warning(
                "request refused before the application",
                status=status,
                detail=detail,
                client=_address(client),
                not_logged_since_last=not_logged,
            )
        self.transport.write(_raw_problem(status, detail, self.server_state.default_headers))
        self._close_lingering()

    def timeout_keep_alive_handler(self) -> None:
        self._close_lingering()  # uvicorn's closes at once: a request crossing the close would be reset

    def _idle(self) -> bool:
        return self.cycle is None or bool(self.cycle.response_complete)

    def _close_if_idle(self) -> None:
        self._close_timer = None
        if self._idle() and not self._header_bytes:
            self._close_lingering()
        # Else a request arrived during the grace: its response carries Connection: close and closes, or
        # its headers are still coming and the header timeout ends it.

    def _await_headers(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_cycle = self.cycle
        self._header_bytes = False
        self._head_size = 0
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_timed_out)

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self._lingering or self.cycle is not self._header_cycle:
            return
        if self._header_bytes:
            if (not_logged := self._log.admit("header timeout")) is not None:
                client = self.transport.get_extra_info("peername")
                logger.warning(
                    "request headers timed out",
                    client=_address(client),
                    timeout=self.header_timeout,
                    not_logged_since_last=not_logged,
                )
            self.transport.write(_TIMEOUT_RESPONSE)
        self._close_lingering()

    def _close_lingering(self) -> None:
        if self.transport.is_closing() or self._lingering:
            return
        self._lingering = True
        for timer in (self._header_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._close_timer = None
        keep_alive = getattr(self, "timeout_keep_alive_task", None)
        if keep_alive is not None:
            keep_alive.cancel()
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.flow.resume_reading()
        self.transport.write_eof()  # the client reads what was sent, then EOF; its own close ends it
        self._close_timer = self.loop.call_later(LINGER, self.transport.close)


def _address(peer: object) -> str | None:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return None


class DrainingH11Protocol(_BoundedConnection, H11Protocol):
    """uvicorn's h11 protocol with lastro's timeouts, limit and drain."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is part of uvicorn[standard] but optional
    DrainingHttpToolsProtocol: type[asyncio.Protocol] | None = None
else:

    class _DrainingHttpTools(_BoundedConnection, HttpToolsProtocol):
        """uvicorn's httptools protocol with lastro's timeouts, limit and drain, and a response of known
        length sent in one write (`lastro.serve.whole_responses`)."""

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            cycle.transport = HeadWithBody(self.transport, cycle)
            super()._start_asgi_task(cycle, app)

    DrainingHttpToolsProtocol = _DrainingHttpTools


def protocol_path() -> str:
    """Import path of the fastest draining protocol installed, for `uvicorn.Config(http=...)`."""
    if DrainingHttpToolsProtocol is not None:
        return f"{__name__}:DrainingHttpToolsProtocol"
    return f"{__name__}:DrainingH11Protocol"
