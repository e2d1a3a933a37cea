"""A response of known length leaves whole or not at all, through lastro's httptools protocol on a real
loopback socket; streamed responses and `100 Continue` are written as before."""

from __future__ import annotations

import contextlib
import gc
import socket
import weakref
from collections.abc import Iterator

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from lastro.serve.protocol import DrainingHttpToolsProtocol
from tests.support.servers import protocol_server

pytestmark = pytest.mark.skipif(DrainingHttpToolsProtocol is None, reason="httptools is not installed")


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """`/known` and `/streamed` fail after their head; `/echo` answers the request's body."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/echo":
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    known = [(b"content-length", b"2")] if scope["path"] == "/known" else []
    await send({"type": "http.response.start", "status": 200, "headers": known})
    raise RuntimeError("failed between the head and the body")


class Probe:
    """Something a request's scope holds, to see when the scope is freed."""


async def probed(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers `/probe`, keeping a weak reference to an object its scope holds."""
    if scope["type"] != "http":
        return
    probe = scope["probe"] = Probe()
    PROBES.append(weakref.ref(probe))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


PROBES: list[weakref.ref[Probe]] = []


@pytest.fixture
def no_collector() -> Iterator[None]:
    """The garbage collector off: only reference counts free objects."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def exchange(port: int, request: bytes) -> bytes:
    """Send `request` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


@contextlib.contextmanager
def connected(application: ASGIApp) -> Iterator[socket.socket]:
    """One kept-alive connection to lastro's httptools protocol serving `application`."""
    with (
        protocol_server(application, DrainingHttpToolsProtocol) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        sock.settimeout(10)
        yield sock


def read_until(sock: socket.socket, end: bytes) -> bytes:
    """What the server sends until it has sent `end`."""
    answer = b""
    while not answer.endswith(end):
        chunk = sock.recv(4096)
        assert chunk, answer
        answer += chunk
    return answer


def test_a_known_length_head_never_leaves_without_its_body() -> None:
    """The application fails after the head of a Content-Length response: the client receives nothing."""
    with protocol_server(app, DrainingHttpToolsProtocol) as port:
        assert exchange(port, b"GET /known HTTP/1.1\r\nHost: x\r\n\r\n") == b""


def test_a_streamed_head_is_written_at_once() -> None:
    """A chunked response's head is not held for its body, which may come much later."""
    with protocol_server(app, DrainingHttpToolsProtocol) as port:
        answer = exchange(port, b"GET /streamed HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked\r\n" in answer


def test_100_continue_is_written_before_the_body_is_sent() -> None:
    """A request that expects 100 Continue gets it, then its body back with the response, kept alive."""
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    with connected(app) as sock:
        sock.sendall(head)
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        for _ in range(2):
            sock.sendall(b"hello")
            answer = read_until(sock, b"hello")
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"content-length: 5\r\n" in answer
            sock.sendall(head)
            assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_a_head_request_gets_its_head_at_once() -> None:
    """HEAD on a Content-Length response has no body write to wait for: its head is written, kept alive."""
    with connected(app) as sock:
        for _ in range(2):
            sock.sendall(b"HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = read_until(sock, b"\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"content-length: 0\r\n" in answer


@pytest.mark.usefixtures("no_collector")
def test_a_served_request_is_freed_without_the_garbage_collector() -> None:
    """A request's cycle and scope are freed when the next request on the connection starts, not left
    in a reference cycle for the collector."""
    PROBES.clear()
    with connected(probed) as sock:
        for _ in range(3):
            sock.sendall(b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_until(sock, b"ok").startswith(b"HTTP/1.1 200 OK\r\n")
        assert len(PROBES) == 3
        assert [probe() is None for probe in PROBES[:2]] == [True, True]
