"""`WS /api/orders/events` in-process: `lastro.create_app` with every middleware on, a real uvicorn in a
thread, the SQLite broadcast of its lifespan, and a real `websockets` client.

The tests publish through a route of their own, in the service's loop, as the orders routes' step does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI, Request

from examples.orders.auth import Principal, TokenCodec
from examples.orders.events import CLOSE_GAP, CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TRY_LATER, channel
from examples.orders.events import router as events_router
from lastro import ServiceState, create_app
from lastro.settings import get_settings
from tests.support.process import wait_for
from tests.support.servers import uvicorn_thread

SECRET = "s" * 48
TIMEOUT = 10.0


def make_app(database_url: str, **settings: Any) -> FastAPI:
    """Every layer lastro has, on: limits, timeouts, hosts, CORS, metrics, request ids."""
    options: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "MAX_IN_FLIGHT": 8,
        "REQUEST_TIMEOUT": 5.0,
        "ALLOWED_HOSTS": ["127.0.0.1"],
        "CORS_ORIGINS": ["https://shop.example"],
        "RATE_LIMIT_DEFAULT": "1000/minute",
        "METRICS_ENABLED": True,
    }
    app = create_app(get_settings(**(options | settings)))
    app.state.tokens = TokenCodec(SECRET, ttl=600)
    app.include_router(events_router)

    @app.post("/publish/{tenant_id}/{count}")
    async def publish(request: Request, tenant_id: int, count: int) -> dict[str, int]:
        state: ServiceState = request.app.state.lastro
        assert state.broadcast is not None
        for order_id in range(1, count + 1):
            event = await state.broadcast.publish(
                channel(tenant_id), {"type": "order.created", "order_id": order_id, "version": 1}
            )
        return {"last_id": event.id}

    @app.post("/end-subscriptions")
    async def end_subscriptions(request: Request) -> None:
        state: ServiceState = request.app.state.lastro
        assert state.broadcast is not None
        state.broadcast.end_subscriptions()  # what the service's shutdown does first

    @app.get("/subscribers")
    async def subscribers(request: Request) -> dict[str, int]:
        state: ServiceState = request.app.state.lastro
        assert state.broadcast is not None
        return {"subscribers": state.broadcast.statistics()["subscribers"]}

    return app


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    with uvicorn_thread(make_app(f"sqlite:///{tmp_path / 'events.db'}")) as url:
        yield url


def token(tenant_id: int) -> str:
    return TokenCodec(SECRET, ttl=600).issue(Principal(user_id=1, tenant_id=tenant_id, is_admin=False))


def events_url(url: str, tenant_id: int, **query: str) -> str:
    extra = "".join(f"&{key}={value}" for key, value in query.items())
    return f"{url.replace('http', 'ws', 1)}/api/orders/events?token={token(tenant_id)}{extra}"


def publish(url: str, tenant_id: int, count: int = 1) -> int:
    response = httpx.post(f"{url}/publish/{tenant_id}/{count}", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    last_id: int = response.json()["last_id"]
    return last_id


async def receive(socket: websockets.ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))
    return message


async def closed_with(socket: websockets.ClientConnection) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    try:
        while True:
            await asyncio.wait_for(socket.recv(), TIMEOUT)
    except websockets.ConnectionClosed:
        pass
    assert socket.close_code is not None
    return socket.close_code, socket.close_reason or ""


def test_an_event_of_the_tenant_reaches_its_socket_through_every_middleware(service: str) -> None:
    """A subscribed socket receives its tenant's event as a JSON text frame, id first."""

    async def scenario() -> None:
        async with websockets.connect(events_url(service, 1)) as socket:
            last_id = await asyncio.to_thread(publish, service, 1)
            assert await receive(socket) == {
                "id": last_id,
                "type": "order.created",
                "order_id": 1,
                "version": 1,
            }

    asyncio.run(scenario())


def test_another_tenants_events_never_arrive(service: str) -> None:
    """Tenant 2's event is not sent to tenant 1's socket; tenant 1's next one is."""

    async def scenario() -> None:
        async with websockets.connect(events_url(service, 1)) as socket:
            await asyncio.to_thread(publish, service, 2)
            mine = await asyncio.to_thread(publish, service, 1)
            assert (await receive(socket))["id"] == mine

    asyncio.run(scenario())


@pytest.mark.parametrize("query", ["", "?token=not-a-token", f"?token={token(1)[:-2]}"])
def test_a_missing_or_bad_token_is_refused_at_the_handshake(service: str, query: str) -> None:
    """No token, garbage or a tampered signature: HTTP 403, no socket."""

    async def scenario() -> None:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(f"{service.replace('http', 'ws', 1)}/api/orders/events{query}"):
                pass
        assert refused.value.response.status_code == 403

    asyncio.run(scenario())


@pytest.mark.parametrize("since", ["abc", "-1", "1.5", "99999999999999999999999"])
def test_a_since_that_is_not_an_event_id_is_a_policy_violation(service: str, since: str) -> None:
    """`since` that is not an integer ≥ 0 closes the socket with 1008 and says why."""

    async def scenario() -> None:
        async with websockets.connect(events_url(service, 1, since=since)) as socket:
            code, reason = await closed_with(socket)
            assert code == CLOSE_POLICY
            assert "since" in reason

    asyncio.run(scenario())


def test_since_replays_what_was_missed_then_goes_on_live(service: str) -> None:
    """Connecting with since=N gives the events after N in order, then the next live one."""

    async def scenario() -> None:
        first = await asyncio.to_thread(publish, service, 1)
        await asyncio.to_thread(publish, service, 1, 3)
        async with websockets.connect(events_url(service, 1, since=str(first))) as socket:
            replayed = [(await receive(socket))["id"] for _ in range(3)]
            live = await asyncio.to_thread(publish, service, 1)
            assert replayed == [first + 1, first + 2, first + 3]
            assert (await receive(socket))["id"] == live

    asyncio.run(scenario())


def test_a_since_no_longer_kept_gets_a_gap_message_and_4410(service: str) -> None:
    """An id never given out (or trimmed) gives one gap message naming `since`, then close 4410."""

    async def scenario() -> None:
        await asyncio.to_thread(publish, service, 1)
        async with websockets.connect(events_url(service, 1, since="1000000")) as socket:
            gap = await receive(socket)
            code, _ = await closed_with(socket)
        assert gap["type"] == "gap"
        assert gap["since"] == 1000000
        assert gap["detail"]
        assert code == CLOSE_GAP

    asyncio.run(scenario())


def test_a_subscriber_that_falls_behind_is_closed_with_1013(tmp_path: Path) -> None:
    """With a queue of 1, a burst the socket cannot take at once ends it with 1013, not memory."""
    app = make_app(f"sqlite:///{tmp_path / 'events.db'}", EVENTS_QUEUE_SIZE=1, EVENTS_POLL_INTERVAL=0.5)

    async def scenario(url: str) -> None:
        async with websockets.connect(events_url(url, 1)) as socket:
            await asyncio.to_thread(publish, url, 1, 20)  # all delivered in one poll, into a queue of 1
            code, reason = await closed_with(socket)
        assert code == CLOSE_TRY_LATER
        assert "since" in reason

    with uvicorn_thread(app) as url:
        asyncio.run(scenario(url))


def test_a_client_that_leaves_ends_its_subscription(service: str) -> None:
    """Once the client disconnects, the worker holds no subscription for it."""

    def subscribers() -> int:
        count: int = httpx.get(f"{service}/subscribers", timeout=TIMEOUT).json()["subscribers"]
        return count

    async def scenario() -> None:
        async with websockets.connect(events_url(service, 1)):
            assert await asyncio.to_thread(subscribers) == 1

    asyncio.run(scenario())
    wait_for(lambda: subscribers() == 0, timeout=TIMEOUT)


def test_subscriptions_ended_by_the_shutdown_close_with_1001(service: str) -> None:
    """The service's shutdown ends the subscriptions: each socket is closed going away (1001)."""

    async def scenario() -> None:
        async with websockets.connect(events_url(service, 1)) as socket:
            response = await asyncio.to_thread(httpx.post, f"{service}/end-subscriptions", timeout=TIMEOUT)
            assert response.status_code == 200
            code, _ = await closed_with(socket)
        assert code == CLOSE_GOING_AWAY

    asyncio.run(scenario())
