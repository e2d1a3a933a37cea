"""BodyLimitMiddleware: a body over MAX_BODY_BYTES is refused with 413, declared or counted as it arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.types import Message, Receive, Scope, Send

from lastro.http.body_limit import BodyLimitMiddleware
from lastro.http.problem import PROBLEM_CONTENT_TYPE
from tests.support.asgi import lifespan_through

pytestmark = pytest.mark.anyio

LIMIT = 10
DETAIL = "the request body is larger than 10 bytes (MAX_BODY_BYTES)"


def make_app() -> BodyLimitMiddleware:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    return BodyLimitMiddleware(app, max_body_bytes=LIMIT)


async def post(content: bytes | AsyncIterator[bytes]) -> httpx.Response:
    transport = httpx.ASGITransport(app=make_app())
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
