"""A running service's `Broadcast`: opened at start-up on the service's database, in `/health`, ended at
shutdown."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis
from fastapi import FastAPI

from lastro import Broadcast, ServiceState, create_app
from lastro.errors import EventsExpired, SubscriptionEnded
from lastro.settings import get_settings
from tests.coordination.conftest import REDIS_URL
from tests.support.lifespan import running

pytestmark = pytest.mark.anyio


@pytest.fixture
async def app(sqlite_url: str) -> AsyncIterator[FastAPI]:
    app = create_app(get_settings(DATABASE_URL=sqlite_url))
    async with running(app):
        yield app


def broadcast_of(app: FastAPI) -> Broadcast:
    state: ServiceState = app.state.lastro
    assert state.broadcast is not None
    return state.broadcast


async def test_start_up_opens_the_broadcast_on_the_sqlite_file(app: FastAPI) -> None:
    """With SQLite and no REDIS_URL, the broadcast is the database's events table, and it delivers."""
    broadcast = broadcast_of(app)
    assert broadcast.transport.name == "sqlite"
    async with broadcast.subscribe("c") as events:
        published = await broadcast.publish("c", {"n": 1})
        assert await asyncio.wait_for(events.get(), 10) == published


async def test_health_shows_the_broadcast(app: FastAPI) -> None:
    """/health has a non-critical "broadcast" check with the backend, the link and the subscribers."""
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        broadcast_of(app).subscribe("c"),
    ):
        check = (await client.get("/health")).json()["checks"]["broadcast"]
    assert check["status"] == "ok"
    assert check["backend"] == "sqlite"
    assert check["subscribers"] == 1
    assert {"connected", "reconnections", "last_error", "delivered"} <= set(check)


async def test_the_receiving_loop_and_the_trim_are_background_tasks(app: FastAPI) -> None:
    """Both run as supervised tasks of the worker."""
    tasks = app.state.lastro.tasks.statuses()
    assert tasks["broadcast"]["state"] == "running"
    assert tasks["broadcast-trim"]["state"] == "running"


async def test_shutdown_ends_the_subscriptions(sqlite_url: str) -> None:
    """A subscriber waiting when the service stops gets SubscriptionEnded, not a hang."""
    app = create_app(get_settings(DATABASE_URL=sqlite_url))
    async with running(app):
        subscribing = broadcast_of(app).subscribe("c")
        events = await subscribing.__aenter__()
        waiting = asyncio.create_task(events.get())
        await asyncio.sleep(0)
    with pytest.raises(SubscriptionEnded):
        await asyncio.wait_for(waiting, 10)


@pytest.mark.redis
async def test_with_redis_url_the_broadcast_goes_through_redis(sqlite_url: str) -> None:
    """REDIS_URL set: the broadcast is Redis's, under the service's own key prefix; it delivers, and the
    service stops promptly (redis-py once swallowed the cancellation of its receiving loop)."""
    name = f"broadcast-test-{uuid.uuid4().hex[:12]}"
    app = create_app(get_settings(DATABASE_URL=sqlite_url, REDIS_URL=REDIS_URL, SERVICE_NAME=name))
    try:
        async with running(app):
            broadcast = broadcast_of(app)
            assert broadcast.transport.name == "redis"
            async with broadcast.subscribe("c") as events:
                published = await broadcast.publish("c", {"n": 1})
                assert await asyncio.wait_for(events.get(), 10) == published
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 5
    finally:
        with redis.Redis.from_url(REDIS_URL) as client:
            keys = list(client.scan_iter(match=f"lastro:{name}:*"))
            assert keys
            client.delete(*keys)


@pytest.mark.postgres
async def test_on_postgresql_the_broadcast_listens_to_the_database(postgres_url: str) -> None:
    """PostgreSQL without REDIS_URL: LISTEN/NOTIFY over the events table, and it delivers."""
    app = create_app(get_settings(DATABASE_URL=postgres_url))
    async with running(app):
        broadcast = broadcast_of(app)
        assert broadcast.transport.name == "postgresql"
        async with broadcast.subscribe("c") as events:
            published = await broadcast.publish("c", {"n": 1})
            assert await asyncio.wait_for(events.get(), 10) == published


async def test_events_older_than_the_retention_are_trimmed_in_the_background(sqlite_url: str) -> None:
    """With EVENTS_RETENTION at 1 s, an old event goes within seconds, and the newest stays."""
    app = create_app(get_settings(DATABASE_URL=sqlite_url, EVENTS_RETENTION=1))
    async with running(app):
        broadcast = broadcast_of(app)
        old = await broadcast.publish("c", {"n": 0})
        newest = await broadcast.publish("c", {"n": 1})
        for _ in range(500):  # the trim runs every second
            try:
                await broadcast.replay("c", old.id - 1)
            except EventsExpired:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the old event was never trimmed")
        assert await broadcast.replay("c", old.id) == [newest]
