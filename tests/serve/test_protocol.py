"""lastro's uvicorn protocols, h11 and httptools alike, on a real loopback socket: timeouts and the limit."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from lastro.serve.protocol import DrainingH11Protocol, DrainingHttpToolsProtocol
from tests.support.servers import wait_for

PROTOCOLS = [DrainingH11Protocol, DrainingHttpToolsProtocol]
GET = b"GET /work HTTP/1.1\r\nHost: localhost\r\n\r\n"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@contextmanager
def protocol_server(protocol: type[asyncio.Protocol] | None, **config: object) -> Iterator[int]:
    """uvicorn with `protocol` in a thread on a free port; extra attributes set on its config."""
    assert protocol is not None
    options = {key: value for key, value in config.items() if key != "header_timeout"}
    settings = uvicorn.Config(app, host="127.0.0.1", port=0, http=protocol, log_config=None, **options)  # type: ignore[arg-type]
    settings.header_timeout = config.get("header_timeout", 20.0)  # type: ignore[attr-defined]
    server = uvicorn.Server(settings)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started and server.servers, timeout=10)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def read_answer(sock: socket.socket) -> bytes:
    """The app's whole answer: headers, then its two-byte body."""
    data = b""
    while not data.endswith(b"\r\n\r\nok"):
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    return data


def read_to_eof(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_partial_headers_get_408_problem_and_eof_at_the_header_timeout(
    protocol: type[asyncio.Protocol],
) -> None:
    """Half a request, then silence: 408 problem+json with Connection: close, then EOF, at the timeout."""
    with (
        protocol_server(protocol, header_timeout=0.5) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        sock.sendall(b"GET /work HTTP/1.1\r\nHost: loc")
        started = time.monotonic()
        answer = read_to_eof(sock)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close\r\n" in answer
    assert b"application/problem+json" in answer
    assert 0.3 < elapsed < 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_header_timeout_starts_again_after_each_response(protocol: type[asyncio.Protocol]) -> None:
    """Requests 0.3 s apart on one connection outlive a 0.5 s header timeout; silence then closes it."""
    with (
        protocol_server(protocol, header_timeout=0.5, timeout_keep_alive=30) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        answers = []
        for _ in range(4):
            sock.sendall(GET)
            answers.append(read_answer(sock))
            time.sleep(0.3)
        closed = read_to_eof(sock)
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)
    assert closed == b""


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_connection_limit_spares_health(protocol: type[asyncio.Protocol]) -> None:
    """limit_concurrency reached: /health/live is served, other paths get 503 problem+json and close."""
    with protocol_server(protocol, limit_concurrency=3) as port, ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(socket.create_connection(("127.0.0.1", port)))
        with socket.create_connection(("127.0.0.1", port)) as probe:
            probe.sendall(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n")
            live = read_answer(probe)
        with socket.create_connection(("127.0.0.1", port)) as other:
            other.sendall(GET)
            refused = read_to_eof(other)
    assert live.startswith(b"HTTP/1.1 200")
    assert refused.startswith(b"HTTP/1.1 503")
    assert b"application/problem+json" in refused
    assert b"MAX_CONNECTIONS" in refused
