"""InFlightLimitMiddleware: over the cap a request gets an immediate 503 problem+json with Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from lastro.http.in_flight import InFlightLimitMiddleware
from lastro.http.loop_lag import LoopLag
from lastro.http.problem import PROBLEM_CONTENT_TYPE
from tests.support.asgi import lifespan_through

pytestmark = pytest.mark.anyio

CAP = 2


@dataclass
class Gate:
    """Holds requests inside the application until released."""

    capacity: int
    inside: int = 0
    full: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


def make_app(gate: Gate, **options: object) -> InFlightLimitMiddleware:
    app = FastAPI()

    @app.get("/held")
    async def held() -> dict[str, bool]:
        gate.inside += 1
        if gate.inside >= gate.capacity:
            gate.full.set()
        await gate.release.wait()
        return {"ok": True}

    @app.get("/quick")
    async def quick() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/fails")
    async def fails() -> None:
        raise RuntimeError("boom")

    @app.get("/admin/dashboard.json")
    async def dashboard() -> dict[str, str]:
        return {"status": "read"}

    return InFlightLimitMiddleware(app, max_in_flight=CAP, **options)  # type: ignore[arg-type]


@asynccontextmanager
async def saturated(
    gate: Gate, middleware: InFlightLimitMiddleware
) -> AsyncIterator[tuple[httpx.AsyncClient, list[asyncio.Task[httpx.Response]]]]:
    """A client whose worker holds CAP requests in flight for the block; they are released on exit."""
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        held = [asyncio.create_task(client.get("/held")) for _ in range(CAP)]
        try:
            await asyncio.wait_for(gate.full.wait(), 5)
            yield client, held
        finally:
            gate.release.set()
            await asyncio.gather(*held, return_exceptions=True)


async def test_requests_under_the_cap_are_served() -> None:
    """Up to the cap, requests are admitted and answered normally."""
    gate = Gate(capacity=CAP)
    async with saturated(gate, make_app(gate)) as (_, held):
        gate.release.set()
        responses = await asyncio.gather(*held)
    assert [response.status_code for response in responses] == [200] * CAP


async def test_request_over_the_cap_gets_503_problem_with_retry_after() -> None:
    """With the cap reached, the next request is refused with 503 problem+json and Retry-After."""
    gate = Gate(capacity=CAP)
    async with saturated(gate, make_app(gate)) as (client, _):
        refused = await client.get("/quick")
    assert refused.status_code == 503
    assert refused.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert refused.headers["retry-after"] == "1"
    body = refused.json()
    assert body["status"] == 503
    assert f"maximum of {CAP} requests" in body["detail"]


async def test_health_paths_are_exempt_from_the_cap() -> None:
    """/health answers even while the worker is at its cap."""
    gate = Gate(capacity=CAP)
    async with saturated(gate, make_app(gate)) as (client, _):
        live = await client.get("/health/live")
    assert live.status_code == 200


async def test_the_dashboard_is_exempt_from_the_cap() -> None:
    """The dashboard shows a saturated worker rather than being refused by it."""
    gate = Gate(capacity=CAP)
    async with saturated(gate, make_app(gate)) as (client, _):
        read = await client.get("/admin/dashboard.json")
    assert read.status_code == 200


async def test_admitted_requests_finish_after_a_refusal() -> None:
    """Refusing the excess does not disturb the requests already admitted."""
    gate = Gate(capacity=CAP)
    async with saturated(gate, make_app(gate)) as (client, held):
        await client.get("/quick")
        gate.release.set()
        responses = await asyncio.gather(*held)
    assert [response.status_code for response in responses] == [200] * CAP


async def test_slots_are_freed_when_requests_finish() -> None:
    """Once the held requests finish, the count is back to zero and new requests are admitted."""
    gate = Gate(capacity=CAP)
    middleware = make_app(gate)
    async with saturated(gate, middleware) as (client, held):
        gate.release.set()
        await asyncio.gather(*held)
        admitted = await client.get("/quick")
    assert admitted.status_code == 200
    assert middleware.in_flight == 0


async def test_a_failing_request_frees_its_slot() -> None:
    """A request whose handler raises still gives its slot back."""
    middleware = make_app(Gate(capacity=CAP))
    transport = httpx.ASGITransport(app=middleware, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        failed = await client.get("/fails")
    assert failed.status_code == 500
    assert middleware.in_flight == 0


async def test_a_request_waiting_for_its_body_holds_no_slot() -> None:
    """CAP requests whose bodies never finish arriving: another request is still admitted."""
    arrived = asyncio.Event()

    async def upload(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def trickling() -> Message:
        await arrived.wait()
        return {"type": "http.request", "body": b"x", "more_body": False}

    async def ignore(message: Message) -> None:
        pass

    middleware = InFlightLimitMiddleware(upload, max_in_flight=CAP)
    scope: Scope = {"type": "http", "method": "POST", "path": "/upload", "headers": []}
    uploads = [asyncio.create_task(middleware(scope, trickling, ignore)) for _ in range(CAP)]
    await asyncio.sleep(0)
    waiting = middleware.in_flight
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=middleware), base_url="http://t"
    ) as client:
        admitted = await client.post("/upload", content=b"all at once")
    arrived.set()
    await asyncio.gather(*uploads)
    assert waiting == 0
    assert admitted.status_code == 200
    assert middleware.in_flight == 0


class FixedLag(LoopLag):
    """A loop that is always `lag` seconds late."""

    def __init__(self, lag: float) -> None:
        super().__init__()
        self.lag = lag

    def current(self) -> float:
        return self.lag


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def get_quick(middleware: InFlightLimitMiddleware, path: str = "/quick") -> httpx.Response:
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_without_limits_nothing_is_refused() -> None:
    """By default there is no cap and no lag limit: a late worker with a request held inside serves on."""
    release, inside = asyncio.Event(), asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/held":
            inside.set()
            await release.wait()
        await ok(scope, receive, send)

    middleware = InFlightLimitMiddleware(app, loop_lag=FixedLag(5.0))
    held = asyncio.create_task(get_quick(middleware, "/held"))
    await asyncio.wait_for(inside.wait(), 5)
    served = await get_quick(middleware)
    release.set()
    assert ((await held).status_code, served.status_code) == (200, 200)


async def test_a_loop_exactly_at_its_lag_limit_is_served() -> None:
    """A loop late by exactly MAX_LOOP_LAG still serves; later than that it sheds."""
    at_limit = InFlightLimitMiddleware(ok, max_loop_lag=0.5, loop_lag=FixedLag(0.5))
    assert (await get_quick(at_limit)).status_code == 200
    refused = await get_quick(InFlightLimitMiddleware(ok, max_loop_lag=0.5, loop_lag=FixedLag(0.6)))
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["detail"] == "this worker is 600 ms behind (MAX_LOOP_LAG is 0.5 s)"


async def test_health_paths_are_served_even_behind_the_lag_limit() -> None:
    """/health answers however late the loop runs, and its request body reaches the handler."""

    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    middleware = InFlightLimitMiddleware(echo, max_loop_lag=0.5, loop_lag=FixedLag(9.0))
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answered = await client.post("/health/live", content=b"ping")
    assert (answered.status_code, answered.content) == (200, b"ping")


async def test_a_request_whose_body_arrived_counts_while_it_waits_again() -> None:
    """Once its body is complete a request is counted, even while it waits on receive for a disconnect."""
    counted: list[int] = []
    messages = [
        {"type": "http.request", "body": b"a", "more_body": True},
        {"type": "http.request", "body": b"b"},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        counted.append(middleware.in_flight)
        return messages.pop(0)

    async def watcher(scope: Scope, receive: Receive, send: Send) -> None:
        for _ in range(3):
            await receive()
        counted.append(middleware.in_flight)

    async def ignore(message: Message) -> None:
        pass

    middleware = InFlightLimitMiddleware(watcher, max_in_flight=CAP)
    await middleware({"type": "http", "method": "POST", "path": "/upload", "headers": []}, receive, ignore)
    assert counted == [0, 0, 1, 1]
    assert middleware.in_flight == 0


async def test_requests_back_from_their_body_count_each() -> None:
    """Two requests whose bodies arrived are both counted again: the third is refused."""
    release = asyncio.Event()
    inside = asyncio.Event()
    arrived = 0

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal arrived
        await receive()
        arrived += 1
        if arrived == CAP:
            inside.set()
        await release.wait()
        await ok(scope, receive, send)

    async def body() -> Message:
        return {"type": "http.request", "body": b"x", "more_body": False}

    async def ignore(message: Message) -> None:
        pass

    middleware = InFlightLimitMiddleware(handler, max_in_flight=CAP)
    scope: Scope = {"type": "http", "method": "POST", "path": "/upload", "headers": []}
    held = [asyncio.create_task(middleware(scope, body, ignore)) for _ in range(CAP)]
    await asyncio.wait_for(inside.wait(), 5)
    refused = await get_quick(middleware)
    release.set()
    await asyncio.gather(*held)
    assert refused.status_code == 503


async def test_lifespan_messages_pass_through_untouched() -> None:
    """A lifespan scope reaches the application with the server's own receive and send."""
    assert await lifespan_through(lambda app: InFlightLimitMiddleware(app, max_in_flight=1)) == [
        {"type": "lifespan.startup"}
    ]
