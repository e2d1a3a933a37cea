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
from tests.support.asgi import lifespan_through
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


def then_disconnect_after(time: FakeTime, seconds: float, body: Message) -> Receive:
    """The whole body at once, then the client's disconnect `seconds` later."""
    messages = [body, {"type": "http.disconnect"}]

    async def receive() -> Message:
        await asyncio.sleep(0)  # a real wait: the timeout gets its chance to fire
        message = messages.pop(0)
        if message["type"] == "http.disconnect":
            time.now += seconds
        return message

    return receive


@pytest.mark.parametrize(
    "body",
    [
        {"type": "http.request", "body": b"all", "more_body": False},
        {"type": "http.request", "body": b"all"},  # more_body left out means the last chunk
    ],
)
async def test_waiting_for_the_disconnect_is_not_timed(body: Message) -> None:
    """After the last chunk, a wait of 30 s into a 20 s budget (a long streamed answer) is not cut."""
    time = FakeTime()
    middleware = BodyTimeoutMiddleware(reading_app, timeout=20, clock=time.clock)
    await call(middleware, then_disconnect_after(time, 30, body))
    assert time.now - 1000.0 == 30


async def test_by_default_the_deadline_is_fixed() -> None:
    """Without min_rate, bytes earn no time: a wait 25 s into a 20 s budget is cut."""
    time = FakeTime()
    middleware = BodyTimeoutMiddleware(reading_app, timeout=20, clock=time.clock)
    with pytest.raises(BodyTimeout):
        await call(middleware, arriving(time, [(25, b"a" * 5000), (1, b"b")]))


async def test_the_time_earned_by_min_rate_runs_out_too() -> None:
    """5,000 bytes at 500 B/s earn 10 s: a wait 31 s into a 20 s budget is still cut."""
    time = FakeTime()
    middleware = BodyTimeoutMiddleware(reading_app, timeout=20, min_rate=500, clock=time.clock)
    with pytest.raises(BodyTimeout):
        await call(middleware, arriving(time, [(31, b"a" * 5000), (1, b"b")]))


def test_the_timeout_names_the_settings_that_set_it() -> None:
    """The 408's detail names BODY_TIMEOUT and BODY_MIN_RATE."""
    assert BodyTimeout().detail == "the request body did not arrive in time (BODY_TIMEOUT, BODY_MIN_RATE)"


async def test_lifespan_messages_pass_through_untouched() -> None:
    """A lifespan scope reaches the application with the server's own receive and send."""
    passed = await lifespan_through(lambda app: BodyTimeoutMiddleware(app, timeout=1))
    assert passed == [{"type": "lifespan.startup"}]
