"""A response of known length leaves in one write: its head waits for the first write of its body.

uvicorn's httptools protocol writes a response's status line and headers when the application sends
`http.response.start`, and the body when it sends `http.response.body`: two writes, two TCP segments, two
system calls. A worker killed between the two left a head without its body; a proxy that has passed on a
head cannot retry the request on another instance, so the client saw a truncated response. Here the head
of a response with a `Content-Length` is held until the body's first write and sent with it; an
application that fails in between sends nothing, which a proxy retries elsewhere like a refused connection.

A streamed response (no `Content-Length`, sent chunked) keeps its head's own write, since its body may
come much later; so does the answer to a `HEAD` request, which has no body to wait for. `100 Continue`,
written before any response starts, is never held.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["HeadWithBody"]


class HeadWithBody:
    """The transport one request cycle writes to, in front of the connection's own.

    It reads the cycle's request method and response state (`response_started`, `chunked_encoding`),
    which uvicorn sets before it writes the head, and offers the three transport methods the cycle calls;
    `tests/serve/test_uvicorn_contract.py` pins both. The cycle is held by a weak reference: it holds this
    transport, and a strong one back would put every request's cycle, scope and all they hold in a
    reference cycle, left for the garbage collector instead of freed when the next request starts.
    """

    __slots__ = ("_cycle", "_head", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self._transport = transport
        # Never None when read: only the cycle calls write(), so it is alive while write() runs.
        self._cycle: Callable[[], Any] = weakref.ref(cycle)
        self._head: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            data = head + data
        elif not self._started and (cycle := self._cycle()).response_started:
            self._started = True  # this write is the head
            if cycle.chunked_encoding is False and cycle.scope["method"] != "HEAD":  # a body follows
                self._head = data
                return
        self._transport.write(data)

    def close(self) -> None:
        self._head = None  # the application failed before its body: no head without a body
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()
