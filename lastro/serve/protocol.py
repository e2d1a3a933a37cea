"""HTTP protocols that let a connection accepted just before shutdown deliver its request.

When a uvicorn worker stops (recycled after `MAX_REQUESTS`, replaced on SIGHUP, or stopped), it closes every
connection that has no request in progress. A connection the worker accepted a moment earlier, whose request
bytes are still unread, is closed too, and its client sees "connection reset" for a request that was never
refused. These subclasses keep such a fresh connection open for a short grace: once its request arrives it is
served with `Connection: close`, like any request in progress at shutdown. The listening socket is already
closed by then, so no new connection reaches the stopping worker.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["FRESH_CONNECTION_GRACE", "DrainingH11Protocol", "DrainingHttpToolsProtocol", "protocol_path"]

FRESH_CONNECTION_GRACE = 1.0  # seconds a just-accepted connection may take to send its request at shutdown
_POLL = 0.01


class _DrainFreshConnections:
    """Defers the shutdown of a connection that has not sent its first request yet."""

    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    _drain_deadline: float | None = None

    def shutdown(self) -> None:
        if self.cycle is None and not self.transport.is_closing():
            if self._drain_deadline is None:
                self._drain_deadline = self.loop.time() + FRESH_CONNECTION_GRACE
            if self.loop.time() < self._drain_deadline:
                self.loop.call_later(_POLL, self.shutdown)
                return
        super().shutdown()  # type: ignore[misc]


class DrainingH11Protocol(_DrainFreshConnections, H11Protocol):
    """uvicorn's h11 protocol, draining fresh connections at shutdown."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is part of uvicorn[standard] but optional
    DrainingHttpToolsProtocol: type[asyncio.Protocol] | None = None
else:

    class _DrainingHttpTools(_DrainFreshConnections, HttpToolsProtocol):
        """uvicorn's httptools protocol, draining fresh connections at shutdown."""

    DrainingHttpToolsProtocol = _DrainingHttpTools


def protocol_path() -> str:
    """Import path of the fastest draining protocol installed, for `uvicorn.Config(http=...)`."""
    if DrainingHttpToolsProtocol is not None:
        return f"{__name__}:DrainingHttpToolsProtocol"
    return f"{__name__}:DrainingH11Protocol"
