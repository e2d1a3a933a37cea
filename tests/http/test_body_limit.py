"""BodyLimitMiddleware: a body over MAX_BODY_BYTES is refused with 413, declared or counted as it arrives.

The last tests send 50 MB to a real `lastro serve` of the orders service, over a raw socket that keeps
sending while it reads, as a client uploading a file does.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.types import Message, Receive, Scope, Send

from lastro.http.body_limit import BodyLimitMiddleware
from lastro.http.problem import PROBLEM_CONTENT_TYPE
from tests.support.asgi import lifespan_through
from tests.support.servers import ServeProcess, serve

pytestmark = pytest.mark.anyio

LIMIT = 10
DETAIL = "the request body is larger than 10 bytes (MAX_BODY_BYTES)"


def make_app(**options: Any) -> BodyLimitMiddleware:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    return BodyLimitMiddleware(app, max_body_bytes=LIMIT, **options)


async def post(content: bytes | AsyncIterator[bytes], **options: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=make_app(**options))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/echo", content=content)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_body_of_exactly_the_limit_is_served() -> None:
    """A declared body of MAX_BODY_BYTES reaches the application whole."""
    response = await post(b"x" * LIMIT)
    assert (response.status_code, response.json()) == (200, {"received": LIMIT})


async def test_a_declared_body_over_the_limit_is_refused_at_once() -> None:
    """A Content-Length one byte over the limit is answered 413 problem+json naming the limit."""
    response = await post(b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["detail"] == DETAIL


async def test_a_chunked_body_is_counted_across_its_chunks() -> None:
    """Without Content-Length the chunks are added up: exactly the limit is served."""
    response = await post(chunks(b"x" * 4, b"", b"x" * 6))
    assert (response.status_code, response.json()) == (200, {"received": LIMIT})


async def test_a_chunked_body_crossing_the_limit_is_refused() -> None:
    """Chunks that together cross the limit end in 413 naming the limit."""
    response = await post(chunks(b"x" * 6, b"x" * 5))
    assert (response.status_code, response.json()["detail"]) == (413, DETAIL)


async def test_an_unreadable_content_length_leaves_the_body_to_be_counted() -> None:
    """A Content-Length that is not a number is ignored; the body that arrives is counted instead."""
    received: list[Message] = []
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        received.append(await receive())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"small", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [(b"host", b"test"), (b"content-length", b"lots")]
    scope: Scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    await BodyLimitMiddleware(app, max_body_bytes=LIMIT)(scope, receive, send)
    assert received == [{"type": "http.request", "body": b"small", "more_body": False}]
    assert sent[0]["status"] == 204


async def test_messages_other_than_the_body_are_not_counted() -> None:
    """A disconnect message passes through without counting as body."""
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())

    messages = [{"type": "http.request", "body": b"x" * LIMIT}, {"type": "http.disconnect"}]

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        pass

    scope: Scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    await BodyLimitMiddleware(app, max_body_bytes=LIMIT)(scope, receive, send)
    assert [message["type"] for message in seen] == ["http.request", "http.disconnect"]


async def test_lifespan_messages_pass_through_untouched() -> None:
    """A lifespan scope reaches the application with the server's own receive and send."""
    assert await lifespan_through(lambda app: BodyLimitMiddleware(app, max_body_bytes=0)) == [
        {"type": "lifespan.startup"}
    ]


async def test_a_chunked_body_past_the_drain_is_refused_with_close() -> None:
    """A body still coming after the drain's bytes gets its 413 with Connection: close."""
    response = await post(chunks(b"x" * 11, b"x" * 4, b"x" * 4, b"x"), drain_bytes=5)
    assert (response.status_code, response.headers["connection"]) == (413, "close")


async def test_a_chunked_body_drained_in_time_keeps_the_connection() -> None:
    """A body that ends within the drain is read to its end: the 413 leaves the connection open."""
    response = await post(chunks(b"x" * 11, b"x" * 4))
    assert response.status_code == 413
    assert "connection" not in response.headers


async def test_a_body_that_stalls_while_drained_is_refused_with_close() -> None:
    """The drain waits at most `drain_seconds` for more of the body."""
    sent: list[Message] = []
    messages = [{"type": "http.request", "body": b"x" * (LIMIT + 1), "more_body": True}]

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(60)  # the rest never comes; the drain gives up long before
        raise AssertionError("not reached")

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/echo", "headers": [], "query_string": b""}
    await make_app(drain_seconds=0.01)(scope, receive, send)
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]


UPLOAD = 50 * 1024 * 1024
PIECE = b"x" * 65536


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with serve(tmp_path_factory.mktemp("body-limit"), WORKERS="1") as running_server:
        yield running_server


def connect(server: ServeProcess) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    return sock


def upload(sock: socket.socket, *, chunked: bool) -> threading.Thread:
    """Send a 50 MB POST in the background, declared or chunked, until done or the server hangs up."""
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % UPLOAD
    sock.sendall(
        b"POST /api/orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n%s\r\n\r\n" % framing
    )

    def pump() -> None:
        try:
            for _ in range(UPLOAD // len(PIECE)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(PIECE), PIECE) if chunked else PIECE)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection: what a declared body over the limit gets

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, body


def is_problem_413(status: int, headers: dict[str, str], body: bytes) -> bool:
    return (
        status == 413
        and headers["content-type"] == PROBLEM_CONTENT_TYPE
        and json.loads(body)["status"] == 413
    )


def test_a_served_50_mb_declared_body_is_refused_at_once(server: ServeProcess) -> None:
    """Content-Length of 50 MB: 413 problem+json before the body is read, then the server hangs up."""
    with connect(server) as sock:
        started = time.monotonic()
        sender = upload(sock, chunked=False)
        status, headers, body = read_response(sock)
        assert time.monotonic() - started < 5
        assert is_problem_413(status, headers, body)
        assert headers["connection"] == "close"
        sender.join(10)
        assert not sender.is_alive()  # the upload stopped: nobody reads the rest


def test_a_served_50_mb_chunked_body_is_refused_and_the_connection_reused(server: ServeProcess) -> None:
    """Chunked 50 MB: 413 problem+json once it is all in; the same connection serves the next request."""
    with connect(server) as sock:
        sender = upload(sock, chunked=True)
        status, headers, body = read_response(sock)
        sender.join(10)
        assert is_problem_413(status, headers, body)
        assert "connection" not in headers
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n")
        assert read_response(sock)[0] == 200
