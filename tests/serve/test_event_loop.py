"""The workers' event loop (`lastro.serve.event_loop`): uvloop, accepting waiting connections in batches."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from typing import TypeVar

import pytest

from lastro.serve.event_loop import ACCEPT_BATCH, WORKERS_ENV, BatchAcceptServer, new_event_loop
from lastro.serve.runner import event_loop_name, loop_setting

pytest.importorskip("uvloop")

WAITING = ACCEPT_BATCH + 4
T = TypeVar("T")


class Counted(asyncio.Protocol):
    made: list[Counted]
    transport: asyncio.BaseTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.made.append(self)


async def close_all(made: list[Counted]) -> int:
    """Close the transports made (the loop warns of open ones at close); how many there were."""
    for protocol in made:
        protocol.transport.close()
    await turns(2)
    return len(made)


def factory() -> tuple[list[Counted], Callable[[], asyncio.Protocol]]:
    made: list[Counted] = []

    def make() -> asyncio.Protocol:
        protocol = Counted()
        protocol.made = made
        return protocol

    return made, make


def waiting_clients(stack: ExitStack, listener: socket.socket, count: int) -> list[socket.socket]:
    """`count` clients whose connections wait in `listener`'s accept queue."""
    clients = []
    for _ in range(count):
        client = stack.enter_context(socket.create_connection(listener.getsockname()[:2]))
        clients.append(client)
    return clients


def run_while_waiting(
    loop: asyncio.AbstractEventLoop, listener: socket.socket, count: int, main: Callable[[], Awaitable[T]]
) -> T:
    """`main()` on `loop` while `count` clients wait in `listener`'s accept queue; the loop closed after."""
    with ExitStack() as stack:
        waiting_clients(stack, listener, count)
        try:
            return loop.run_until_complete(main())
        finally:
            loop.close()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # bound and listening, as the supervisor's socket once a worker serves on it
    yield sock
    sock.close()


async def turns(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def test_waiting_connections_are_accepted_in_a_few_turns_of_the_loop(listener: socket.socket) -> None:
    """Connections waiting together are all taken within a few turns, a batch per turn, not one per turn."""
    loop = new_event_loop()
    made, make = factory()

    async def main() -> int:
        server = await loop.create_server(make, sock=listener.dup(), backlog=128)
        await turns(8)
        server.close()
        await server.wait_closed()
        return await close_all(made)

    assert run_while_waiting(loop, listener, WAITING, main) == WAITING


def test_uvloops_own_server_takes_one_connection_per_turn(listener: socket.socket) -> None:
    """The behaviour the batch replaces: uvloop's server accepts one waiting connection per turn."""
    import uvloop

    loop = uvloop.new_event_loop()
    made, make = factory()

    async def main() -> int:
        server = await loop.create_server(make, sock=listener.dup(), backlog=128)
        await turns(8)
        count = len(made)
        server.close()
        await server.wait_closed()
        await turns(4)  # the connections accepted on the last turn get their protocols
        await close_all(made)
        return count

    assert run_while_waiting(loop, listener, WAITING, main) < WAITING // 2


def test_one_turn_takes_at_most_a_batch(listener: socket.socket) -> None:
    """A turn accepts at most ACCEPT_BATCH connections: the workers sharing the socket get the rest."""
    loop = new_event_loop()
    made, make = factory()

    async def main() -> int:
        server = BatchAcceptServer(loop, make, listener.dup(), backlog=128)
        server.accept_waiting()  # what one readable event of the listening socket runs
        await turns(4)
        server.close()
        await server.wait_closed()
        return await close_all(made)

    assert run_while_waiting(loop, listener, WAITING, main) == ACCEPT_BATCH


def one_turn(listener: socket.socket, waiting: int, siblings: int, batch: int = ACCEPT_BATCH) -> int:
    """How many of `waiting` connections one readable event takes, with `siblings` workers on the socket."""
    loop = new_event_loop()
    made, make = factory()

    async def main() -> int:
        server = BatchAcceptServer(loop, make, listener.dup(), backlog=128, batch=batch, siblings=siblings)
        server.accept_waiting()
        await turns(4)
        server.close()
        await server.wait_closed()
        return await close_all(made)

    return run_while_waiting(loop, listener, waiting, main)


@pytest.mark.skipif(sys.platform != "linux", reason="the accept queue's length is read from Linux's TCP_INFO")
def test_a_turn_takes_its_share_of_the_waiting_connections(listener: socket.socket) -> None:
    """With two workers on the socket, a turn takes half of what waits: 50 clients opened together are
    not all one worker's."""
    assert one_turn(listener, 10, siblings=2) == 5


@pytest.mark.skipif(sys.platform != "linux", reason="the accept queue's length is read from Linux's TCP_INFO")
def test_a_lone_waiting_connection_is_taken_whatever_the_workers(listener: socket.socket) -> None:
    """One connection waiting with four workers on the socket: the turn still takes it."""
    assert one_turn(listener, 1, siblings=4) == 1


@pytest.mark.skipif(sys.platform != "linux", reason="the accept queue's length is read from Linux's TCP_INFO")
def test_a_share_is_at_most_a_batch(listener: socket.socket) -> None:
    """Half of a queue longer than two batches is still one batch."""
    assert one_turn(listener, 30, siblings=2, batch=8) == 8


def test_the_loop_reads_how_many_workers_share_the_socket(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lastro serve` names the workers in the environment; the loop's server takes its share."""
    monkeypatch.setenv(WORKERS_ENV, "3")
    loop = new_event_loop()
    made, make = factory()

    async def main() -> int:
        server = await loop.create_server(make, sock=listener.dup(), backlog=128)
        assert isinstance(server, BatchAcceptServer)
        share = server.share()
        server.close()
        await server.wait_closed()
        await close_all(made)
        return share

    assert run_while_waiting(loop, listener, 0, main) == 1


def test_a_closed_server_accepts_no_more(listener: socket.socket) -> None:
    """After close() the server neither serves nor accepts; the supervisor's socket stays open."""
    loop = new_event_loop()
    made, make = factory()

    async def main() -> tuple[bool, tuple[socket.socket, ...]]:
        server = await loop.create_server(make, sock=listener.dup(), backlog=128)
        server.close()
        await server.wait_closed()
        await turns(4)
        return server.is_serving(), tuple(server.sockets)

    assert run_while_waiting(loop, listener, 2, main) == (False, ())
    assert made == []
    assert listener.fileno() != -1


def test_other_servers_are_uvloops_own() -> None:
    """A server on a host and port (no socket given) is uvloop's, unchanged."""
    loop = new_event_loop()
    _, make = factory()

    async def main() -> bool:
        server = await loop.create_server(make, "127.0.0.1", 0)
        server.close()
        await server.wait_closed()
        return isinstance(server, BatchAcceptServer)

    try:
        assert loop.run_until_complete(main()) is False
    finally:
        loop.close()


def test_lastro_serve_picks_the_batching_loop_where_there_is_uvloop() -> None:
    """`lastro serve` gives uvicorn this loop when uvloop is the event loop, asyncio's otherwise."""
    expected = "lastro.serve.event_loop:new_event_loop" if event_loop_name() == "uvloop" else "asyncio"
    assert loop_setting() == expected


@pytest.mark.posix
def test_out_of_descriptors_it_stops_watching_the_socket_then_resumes(listener: socket.socket) -> None:
    """EMFILE on accept unwatches the socket (no busy turn after turn); accepting resumes after the delay."""
    import resource

    loop = new_event_loop()
    made, make = factory()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    async def main() -> tuple[bool, int]:
        server = BatchAcceptServer(loop, make, listener.dup(), backlog=128, retry_delay=0.0)
        await server.start_serving()
        fd = server.sockets[0].fileno()
        # No descriptor left for an accepted socket: the next accept fails with EMFILE.
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) - 1, hard))
        try:
            server.accept_waiting()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        unwatched = not loop.remove_reader(fd)
        await turns(8)  # the retry (delay 0 here) watches it again, and the waiting client is taken
        server.close()
        await server.wait_closed()
        return unwatched, await close_all(made)

    assert run_while_waiting(loop, listener, 1, main) == (True, 1)


def turns_until_made(loop: asyncio.AbstractEventLoop, listener: socket.socket) -> int:
    """How many turns of `loop` pass, after its server starts, before a waiting connection's protocol is
    made."""
    made, make = factory()

    async def main() -> int:
        server = await loop.create_server(make, sock=listener.dup(), backlog=128)
        count = 0
        while not made and count < 20:
            await asyncio.sleep(0)
            count += 1
        await close_all(made)
        server.close()
        await server.wait_closed()
        return count

    return run_while_waiting(loop, listener, 1, main)


def test_a_connection_is_made_in_as_few_turns_as_under_uvloops_own_server(listener: socket.socket) -> None:
    """The transport is made in the turn that accepts the connection, not by a task a turn later: its
    protocol's `connection_made` comes as soon as under uvloop's server, which a busy loop makes matter."""
    import uvloop

    batching = turns_until_made(new_event_loop(), listener)
    assert batching < 20
    assert batching <= turns_until_made(uvloop.new_event_loop(), listener)


def test_a_protocol_that_cannot_be_made_is_reported_and_its_connection_closed(
    listener: socket.socket,
) -> None:
    """A protocol factory that raises: the loop's exception handler gets the error, and the client's
    connection is closed."""
    loop = new_event_loop()
    reported: list[BaseException] = []
    loop.set_exception_handler(lambda _, context: reported.append(context["exception"]))

    def broken() -> asyncio.Protocol:
        raise RuntimeError("no protocol")

    async def main() -> bytes:
        server = await loop.create_server(broken, sock=listener.dup(), backlog=128)
        await turns(4)
        server.close()
        await server.wait_closed()
        return b""

    with ExitStack() as stack:
        (client,) = waiting_clients(stack, listener, 1)
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()
        client.settimeout(5)
        assert client.recv(1) == b""
    assert [str(error) for error in reported] == ["no protocol"]
