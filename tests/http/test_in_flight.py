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
from lastro.http.problem import PROBLEM_CONTENT_TYPE

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
