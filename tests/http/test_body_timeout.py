"""BodyTimeoutMiddleware: a body must arrive within BODY_TIMEOUT, plus a second per BODY_MIN_RATE bytes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from fastapi import Request
from starlette.types import Message, Receive, Scope, Send

from lastro.app import create_app
from lastro.http.body_timeout import BodyTimeout, BodyTimeoutMiddleware
from lastro.settings import Settings
from tests.support.clock import FakeTime

pytestmark = pytest.mark.anyio

SCOPE: Scope = {"type": "http", "method": "POST", "path": "/upload", "headers": []}


def arriving(time: FakeTime, chunks: list[tuple[float, bytes]]) -> Receive:
    """Each chunk arrives `seconds` after the receive call asked for it; then the client disconnects."""
    pending = list(chunks)

    async def receive() -> Message:
        await asyncio.sleep(0)  # a real wait: the timeout gets its chance to fire
        if not pending:
            return {"type": "http.disconnect"}
        seconds, body = pending.pop(0)
        time.now += seconds
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    return receive


async def reading_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body, then waits once more (as a streaming response waits for a disconnect)."""
    while (await receive()).get("more_body"):
        pass
    await receive()


async def call(middleware: Callable[[Scope, Receive, Send], Awaitable[None]], receive: Receive) -> None:
    async def send(message: Message) -> None:
        pass

    await middleware(SCOPE, receive, send)


async def test_a_body_in_time_reaches_the_application() -> None:
    """Chunks a second apart, 5 s in all, against 20 s: the application reads them all."""
    time = FakeTime()
    middleware = BodyTimeoutMiddleware(reading_app, timeout=20, clock=time.clock)
    await call(middleware, arriving(time, [(1, b"a" * 100)] * 5))


async def test_waiting_past_the_deadline_raises_408_with_connection_close() -> None:
    """A body stalled 21 s into a 20 s budget: the next wait is cut with a 408 that closes the connection."""
    time = FakeTime()
    middleware = BodyTimeoutMiddleware(reading_app, timeout=20, clock=time.clock)
    with pytest.raises(BodyTimeout) as raised:
        await call(middleware, arriving(time, [(21, b"a"), (0, b"b")]))
    assert raised.value.status_code == 408
    assert raised.value.headers == {"Connection": "close"}


async def test_every_min_rate_bytes_extend_the_deadline_by_a_second() -> None:
    """5,000 bytes at 500 B/s earn 10 s: still reading 25 s into a 20 s budget is allowed."""
    time = FakeTime()
    middleware = BodyTimeoutMiddleware(reading_app, timeout=20, min_rate=500, clock=time.clock)
    await call(middleware, arriving(time, [(25, b"a" * 5000), (1, b"b")]))


async def test_without_a_min_rate_the_deadline_is_fixed() -> None:
    """BODY_MIN_RATE=0: the same 5,000 bytes earn nothing, and the wait at 25 s is cut."""
    time = FakeTime()
    middleware = BodyTimeoutMiddleware(reading_app, timeout=20, min_rate=0, clock=time.clock)
    with pytest.raises(BodyTimeout):
        await call(middleware, arriving(time, [(25, b"a" * 5000), (1, b"b")]))


async def test_a_complete_body_is_never_cut_afterwards() -> None:
    """Once the last chunk is in, waiting for the disconnect is not timed (a long streamed answer)."""
    time = FakeTime()
    middleware = BodyTimeoutMiddleware(reading_app, timeout=20, clock=time.clock)
    await call(middleware, arriving(time, [(1, b"a"), (1, b"b")]))
    assert time.now - 1000.0 == 2


async def test_the_application_answers_408_problem_json_and_closes() -> None:
    """Inside create_app, a stalled body read is answered 408 problem+json with Connection: close."""
    app = create_app(Settings(BODY_TIMEOUT=0.01))

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    async def stalled() -> Message:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {**SCOPE, "scheme": "http", "query_string": b"", "server": ("test", 80), "client": ("c", 1)}
    await app(scope, stalled, send)
    headers = dict(sent[0]["headers"])
    assert sent[0]["status"] == 408
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"connection"] == b"close"
    assert json.loads(sent[1]["body"])["status"] == 408
