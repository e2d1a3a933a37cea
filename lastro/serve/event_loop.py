"""The workers' event loop: uvloop, with connections accepted in batches as asyncio accepts them.

libuv (since 1.45, libuv/libuv#3696) accepts one connection per turn of the loop. A worker busy with
keep-alive traffic turns its loop every few tens of milliseconds, so connections that arrive together (a
deploy's first clients, a proxy opening its pool, a load test) wait in the kernel's accept queue, taken
one per turn: 200 at once waited up to 2.9 s on two workers (benchmarks/RESULTS.md, "The first second").
asyncio's own loop accepts up to `backlog` connections each time the listening socket is readable, and so
does this one: `create_server(sock=...)` watches the socket and hands every accepted connection to
uvloop's `connect_accepted_socket`. Everything else is uvloop's.

A batch is bounded, and shared: the workers share one listening socket, and a worker that took every
waiting connection would serve them all while its siblings idle, which a load of keep-alive connections
opened together (50 of them, say) then shows as one worker's throughput. So a turn takes its share of
what waits, the accept queue's length (Linux's `TCP_INFO` of the listening socket) over the number of
workers sharing it (`WORKERS_ENV`, set by `lastro serve`), and at most `ACCEPT_BATCH` (asyncio's default
backlog is 100). Where the queue's length cannot be read, a turn takes up to a batch.

A connection's transport is made in the turn that accepts it. `connect_accepted_socket` is a coroutine, and
a task would only start it on the next turn, then the protocol's `connection_made` waits one turn more:
on a loop busy with keep-alive traffic each turn can take tens of milliseconds, so a new connection's
first request waited a turn longer than under uvloop's own server. Its first step is run at once instead
(`_Connecting`), and the rest as what it waits for completes.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct
import sys
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["ACCEPT_BATCH", "ACCEPT_RETRY_DELAY", "WORKERS_ENV", "BatchAcceptServer", "new_event_loop"]

WORKERS_ENV = "LASTRO_SERVE_WORKERS"  # how many workers share the listening socket

ACCEPT_BATCH = 64
# Out of descriptors or memory, the listening socket stays readable and every turn would fail again: stop
# watching it for this long, as asyncio does (its ACCEPT_RETRY_DELAY).
ACCEPT_RETRY_DELAY = 1.0
_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
# Linux's `struct tcp_info`: eight one-byte fields, then `tcpi_rto`, `tcpi_ato`, `tcpi_snd_mss`,
# `tcpi_rcv_mss` and `tcpi_unacked`, which for a listening socket is the length of its accept queue.
_TCP_INFO = struct.Struct("=8xIIIII")  # native byte order, as the kernel writes it


class BatchAcceptServer(asyncio.AbstractServer):
    """A listening socket watched by the loop; each time it is readable, up to `batch` connections are
    accepted and handed to `loop.connect_accepted_socket`. `close()` stops accepting and closes the
    socket (this process's copy: the supervisor's stays open for the next worker)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        backlog: int = 100,
        batch: int = ACCEPT_BATCH,
        retry_delay: float = ACCEPT_RETRY_DELAY,
        siblings: int = 1,
    ) -> None:
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._sock = sock
        self._backlog = backlog
        self._batch = batch
        self._retry_delay = retry_delay
        self._siblings = max(1, siblings)
        self._serving = False
        self._connecting: set[_Connecting] = set()
        self._tcp = sock.family in (socket.AF_INET, socket.AF_INET6)
        self._queue_readable = self._tcp and sys.platform == "linux"
        sock.setblocking(False)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._sock,) if self._serving else ()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        if not self._serving:
            self._serving = True
            self._sock.listen(self._backlog)  # as asyncio's server: the socket may only be bound
            self._loop.add_reader(self._sock.fileno(), self.accept_waiting)

    async def serve_forever(self) -> None:
        await self.start_serving()
        await asyncio.Future()  # until cancelled, as asyncio's Server

    def close(self) -> None:
        if self._serving:
            self._serving = False
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    async def wait_closed(self) -> None:
        """Until the connections accepted before `close()` have their transports."""
        if self._connecting:
            await asyncio.gather(*(connecting.wait() for connecting in self._connecting))

    def share(self) -> int:
        """How many waiting connections this turn takes: its share of the accept queue, at most a batch."""
        if self._siblings == 1 or not self._queue_readable:
            return self._batch
        try:
            info = self._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO.size)
        except OSError:
            return self._batch
        waiting = int(_TCP_INFO.unpack_from(info)[4])
        return min(self._batch, max(1, -(-waiting // self._siblings)))

    def accept_waiting(self) -> None:
        """Accept this turn's share of the waiting connections: what the loop runs when the socket is
        readable."""
        for _ in range(self.share()):
            try:
                connection, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # none left
            except ConnectionAbortedError:
                continue  # that client gave up while it waited: take the next
            except OSError as error:
                if error.errno in _RESOURCES:
                    self._loop.remove_reader(self._sock.fileno())
                    self._loop.call_later(self._retry_delay, self._resume)
                return
            connection.setblocking(False)
            if self._tcp:
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            coroutine = self._loop.connect_accepted_socket(self._protocol_factory, connection)
            _Connecting(self._loop, self._connecting, connection, coroutine).step()

    def _resume(self) -> None:
        if self._serving:
            self._loop.add_reader(self._sock.fileno(), self.accept_waiting)


class _Connecting:
    """`connect_accepted_socket` driven by hand, as a task would drive it, but from its first step on:
    each later step runs when what the previous one awaited is done (on the next turn after a bare yield)."""

    __slots__ = ("_connection", "_coroutine", "_loop", "_pending", "_waiters")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pending: set[_Connecting],
        connection: socket.socket,
        coroutine: Coroutine[Any, Any, Any],
    ) -> None:
        self._loop = loop
        self._pending = pending
        self._connection = connection
        self._coroutine = coroutine
        self._waiters: list[asyncio.Future[None]] = []
        pending.add(self)

    def step(self, *_: object) -> None:
        try:
            awaited = self._coroutine.send(None)
        except StopIteration:
            self._done()
        except Exception as error:
            # An OSError is the client gone before its transport was made; anything else, what a task
            # would have held, is reported the way the loop reports one.
            if not isinstance(error, OSError):
                self._loop.call_exception_handler(
                    {"message": "making an accepted connection's transport failed", "exception": error}
                )
            self._connection.close()
            self._done()
        else:
            if awaited is None:  # a bare yield: go on at the next turn
                self._loop.call_soon(self.step)
            else:
                awaited.add_done_callback(self.step)

    async def wait(self) -> None:
        """Until this connection has its transport, or has failed to get one."""
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter

    def _done(self) -> None:
        self._pending.discard(self)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop whose servers on a given socket accept in batches (`BatchAcceptServer`)."""
    import uvloop

    class Loop(uvloop.Loop):
        async def create_server(  # type: ignore[override]
            self, protocol_factory: Callable[[], asyncio.BaseProtocol], *args: Any, **kwargs: Any
        ) -> asyncio.AbstractServer:
            sock = kwargs.get("sock")
            if args or sock is None or kwargs.get("ssl") is not None:
                return await super().create_server(protocol_factory, *args, **kwargs)
            server = BatchAcceptServer(
                self, protocol_factory, sock, kwargs.get("backlog", 100), siblings=_siblings()
            )
            await server.start_serving()
            return server

    return Loop()


def _siblings() -> int:
    try:
        return max(1, int(os.environ.get(WORKERS_ENV, "1")))
    except ValueError:
        return 1
