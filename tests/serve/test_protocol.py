"""lastro's uvicorn protocols, h11 and httptools alike, on a real loopback socket: timeouts, the limit and
the problem answers to requests that never reach the application."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from contextlib import ExitStack

import pytest
from starlette.types import Receive, Scope, Send

from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.serve.protocol import MAX_HEAD_BYTES, DrainingH11Protocol, DrainingHttpToolsProtocol
from tests.support.servers import protocol_server

PROTOCOLS = [DrainingH11Protocol, DrainingHttpToolsProtocol]
GET = b"GET /work HTTP/1.1\r\nHost: localhost\r\n\r\n"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


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
        protocol_server(app, protocol, header_timeout=0.5) as port,
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
        protocol_server(app, protocol, header_timeout=0.5, timeout_keep_alive=30) as port,
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
    with protocol_server(app, protocol, limit_concurrency=3) as port, ExitStack() as stack:
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


def _refusal(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    """The status, headers and problem document of a raw answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /work HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        b"GET /work HTTP/1.1\r\nX: a\x00b\r\n\r\n",
    ],
    ids=["request-line", "header-line", "nul-in-header"],
)
def test_a_request_the_parser_refuses_gets_400_problem(
    protocol: type[asyncio.Protocol], request_bytes: bytes
) -> None:
    """Not HTTP/1.1: 400 application/problem+json with Connection: close, then EOF (uvicorn: text/plain)."""
    with protocol_server(app, protocol) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request_bytes)
        status, headers, document = _refusal(read_to_eof(sock))
    assert (status, headers["content-type"], headers["connection"]) == (400, PROBLEM_CONTENT_TYPE, "close")
    assert document["status"] == 400
    assert int(headers["content-length"]) == len(json.dumps(document, separators=(",", ":")))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_head_over_max_head_bytes_gets_431_problem(protocol: type[asyncio.Protocol]) -> None:
    """A 64 KB header: 431 problem+json naming the bound, whichever parser (httptools has none of its own)."""
    big = b"GET /work HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
    with (
        protocol_server(app, protocol, h11_max_incomplete_event_size=MAX_HEAD_BYTES) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        sock.sendall(big)
        status, headers, document = _refusal(read_to_eof(sock))
    assert (status, headers["content-type"]) == (431, PROBLEM_CONTENT_TYPE)
    assert str(MAX_HEAD_BYTES) in str(document["detail"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_head_under_max_head_bytes_is_served(protocol: type[asyncio.Protocol]) -> None:
    """A 20 KB header, under the bound, reaches the application, and so does the next request."""
    header = b"GET /work HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    with (
        protocol_server(app, protocol, h11_max_incomplete_event_size=MAX_HEAD_BYTES) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        for _ in range(3):  # the count starts again for each request of a kept-alive connection
            sock.sendall(header)
            assert read_answer(sock).startswith(b"HTTP/1.1 200")
