"""RequestTimeoutMiddleware: a handler past REQUEST_TIMEOUT is cancelled; the client gets 504 problem+json."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from sqlalchemy import text
from starlette.types import Message, Receive, Scope, Send

from lastro import ReadUnit
from lastro.app import create_app
from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.http.request_timeout import RequestTimeoutMiddleware
from lastro.settings import get_settings
from tests.conftest import POSTGRES_URL
from tests.support.asgi import echo, lifespan_through, post_through
from tests.support.lifespan import running
from tests.support.servers import uvicorn_thread

pytestmark = pytest.mark.anyio

TIMEOUT = 0.05  # the slow routes below would take 30 s: the test waits this long
SLOW = 30.0
release = threading.Event()  # lets the thread of `/blocking` end once its test is done


def slow_routes(app: FastAPI, cancelled: list[str]) -> FastAPI:
    @app.get("/slow/{name}")
    async def slow(name: str) -> dict[str, bool]:
        try:
            await asyncio.sleep(SLOW)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise
        return {"ok": True}

    @app.get("/fast")
    async def fast() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first chunk\n"
            await asyncio.sleep(SLOW)
            yield b"never sent\n"

        return StreamingResponse(chunks())

    @app.get("/blocking")
    def blocking() -> dict[str, bool]:
        release.wait(SLOW)  # a `def` route: FastAPI runs it on a thread, which a timeout cannot stop
        return {"ok": True}

    @app.get("/own-timeout")
    async def own_timeout() -> None:
        raise TimeoutError("the handler's own")

    return app


def make_app(cancelled: list[str], timeout: float = TIMEOUT) -> RequestTimeoutMiddleware:
    return RequestTimeoutMiddleware(slow_routes(FastAPI(), cancelled), timeout=timeout)


async def get(app: object, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_a_slow_handler_is_cut_with_504_problem_json() -> None:
    """A handler still running at the deadline is cancelled and the client gets 504 at once."""
    cancelled: list[str] = []
    started = time.perf_counter()
    response = await get(make_app(cancelled), "/slow/one")
    assert time.perf_counter() - started < SLOW / 3
    assert response.status_code == 504
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["detail"] == "the request took longer than 0.05 s (REQUEST_TIMEOUT)"
    assert cancelled == ["one"]


async def test_a_handler_in_time_is_untouched() -> None:
    """A handler that answers before the deadline gets its own response through."""
    response = await get(make_app([]), "/fast")
    assert (response.status_code, response.json()) == (200, {"ok": True})


async def test_a_def_route_gets_its_504_at_once_and_its_thread_runs_on() -> None:
    """A handler blocked in its thread is answered 504 at the deadline; the thread is left to finish."""
    started = time.perf_counter()
    try:
        response = await get(make_app([]), "/blocking")
        assert time.perf_counter() - started < SLOW / 3
    finally:
        release.set()
    assert response.status_code == 504


@pytest.mark.postgres
async def test_a_postgres_unit_of_work_is_cut_at_the_deadline() -> None:
    """On PostgreSQL a statement running past REQUEST_TIMEOUT ends in 504 at the deadline, not at its end."""
    # The statement timeout (1 s) only ends the abandoned statement early, so that shutdown is quick.
    settings = get_settings(
        DATABASE_URL=POSTGRES_URL, REQUEST_TIMEOUT=0.1, DB_STATEMENT_TIMEOUT=1, DB_POOL_SIZE=2
    )
    app = create_app(settings)

    @app.get("/sleep")
    async def sleep(unit: ReadUnit) -> dict[str, bool]:
        await unit.run(lambda connection: connection.execute(text("SELECT pg_sleep(5)")).all())
        return {"ok": True}

    transport = httpx.ASGITransport(app=app)
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        started = time.perf_counter()
        response = await client.get("/sleep")
        assert time.perf_counter() - started < 0.9
    assert (response.status_code, response.headers["content-type"]) == (504, PROBLEM_CONTENT_TYPE)


async def test_another_cancellation_is_not_taken_for_a_timeout() -> None:
    """A request cancelled by someone else (shutdown, a client gone) ends cancelled, without a 504."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = make_app([], timeout=SLOW)
    scope: Scope = {"type": "http", "method": "GET", "path": "/slow/x", "headers": [], "query_string": b""}
    request = asyncio.create_task(middleware(scope, _no_body, send))
    await asyncio.sleep(0.01)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert sent == []


async def test_a_cut_and_another_cancellation_at_once_end_cancelled() -> None:
    """Cut at its deadline while also cancelled by someone else, a request ends cancelled, without a 504."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = make_app([], timeout=SLOW)
    scope: Scope = {"type": "http", "method": "GET", "path": "/slow/x", "headers": [], "query_string": b""}
    request = asyncio.create_task(middleware(scope, _no_body, send))
    await asyncio.sleep(0.01)
    middleware.sweep(math.inf)  # every request is past due at the end of time
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert sent == []


async def test_a_handler_that_swallows_the_cut_leaves_no_cancellation_behind() -> None:
    """A handler that catches the cancellation and answers keeps its answer; no cancel is left pending."""
    sent: list[Message] = []

    async def stubborn(scope: Scope, receive: Receive, send: Send) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(SLOW)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"mine"})

    async def send(message: Message) -> None:
        sent.append(message)

    async def serve_one() -> int:
        scope: Scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
        await RequestTimeoutMiddleware(stubborn, timeout=TIMEOUT)(scope, _no_body, send)
        await asyncio.sleep(0)  # a cancellation left pending would be raised here
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    assert await asyncio.create_task(serve_one()) == 0
    assert [message.get("status") for message in sent] == [200, None]


def test_the_sweep_follows_a_new_event_loop() -> None:
    """The same middleware cuts requests on a second event loop, after the first one closed."""
    middleware = make_app([])
    for _ in range(2):
        assert asyncio.run(get(middleware, "/slow/again")).status_code == 504


async def test_a_zero_timeout_never_cuts() -> None:
    """REQUEST_TIMEOUT=0 passes the request straight through."""
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(TIMEOUT * 2)
        await send({"type": "http.response.start", "status": 204, "headers": []})

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    await RequestTimeoutMiddleware(app, timeout=0)(scope, _no_body, send)
    assert sent[0]["status"] == 204


async def test_the_handlers_own_timeout_error_is_not_a_504() -> None:
    """A TimeoutError the handler raises itself, before the deadline, is left to the error handling."""
    with pytest.raises(TimeoutError, match="the handler's own"):
        await get(make_app([], timeout=SLOW), "/own-timeout")


async def test_time_waiting_for_the_body_does_not_count() -> None:
    """A body slower than the timeout still reaches a handler that is itself quick."""
    chunks = [b"slow ", b"body"]

    async def trickle() -> Message:
        await asyncio.sleep(TIMEOUT)  # two chunks: twice the timeout in all
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/echo", "headers": []}
    await RequestTimeoutMiddleware(echo, timeout=TIMEOUT * 1.5)(scope, trickle, send)
    assert (sent[0]["status"], sent[1]["body"]) == (200, b"slow body")


async def test_a_body_in_one_message_is_timed_with_the_handler() -> None:
    """A quick handler reading a whole body is served as usual."""
    response = await post_through(RequestTimeoutMiddleware(echo, timeout=SLOW), b"payload")
    assert (response.status_code, response.content) == (200, b"payload")


async def test_a_started_response_is_cut_and_the_connection_closed() -> None:
    """Past the deadline mid-stream, the client gets the first chunk and then a closed connection."""
    received: list[bytes] = []

    async def read_stream(url: str) -> None:
        async with httpx.AsyncClient(base_url=url) as client, client.stream("GET", "/stream") as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                received.append(chunk)

    with uvicorn_thread(make_app([])) as url, pytest.raises(httpx.RemoteProtocolError):
        await read_stream(url)
    assert b"".join(received) == b"first chunk\n"


async def test_create_app_logs_one_warning_and_frees_the_in_flight_slot(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through create_app a cut request logs its route and request id, and frees its in-flight slot."""
    settings = get_settings(
        DATABASE_URL=sqlite_url, REQUEST_TIMEOUT=TIMEOUT, MAX_IN_FLIGHT=1, LOG_FORMAT="json"
    )
    cancelled: list[str] = []
    app = slow_routes(create_app(settings), cancelled)
    transport = httpx.ASGITransport(app=app)
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = await client.get("/slow/first", headers={"X-Request-ID": "req-timeout-0001"})
        second = await client.get("/fast")
    assert (first.status_code, first.json()["request_id"], second.status_code) == (
        504,
        "req-timeout-0001",
        200,
    )
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    lines = [line for line in logged if line["event"] == "request timed out"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["level"], line["route"], line["path"]) == ("warning", "/slow/{name}", "/slow/first")
    assert line["request_id"] == "req-timeout-0001"


async def test_lifespan_messages_pass_through_untouched() -> None:
    """A lifespan scope reaches the application with the server's own receive and send."""
    assert await lifespan_through(lambda app: RequestTimeoutMiddleware(app, timeout=1)) == [
        {"type": "lifespan.startup"}
    ]


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
