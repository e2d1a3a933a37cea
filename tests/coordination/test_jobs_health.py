"""Periodic jobs in a running service: declared in the lifespan, shown in /health, degraded but ready."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest
import redis.asyncio
from fastapi import FastAPI
from sqlalchemy import Connection, insert

from lastro import ServiceState, create_app
from lastro.coordination.tables import jobs
from lastro.settings import get_settings
from tests.support.lifespan import running

pytestmark = pytest.mark.anyio

REDIS_URL = "redis://127.0.0.1:6379/0"


async def nothing() -> None:
    pass


def make_app(sqlite_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state: ServiceState = app.state.lastro
        state.jobs.add("report", nothing, cron="0 3 * * *")
        yield

    return create_app(get_settings(DATABASE_URL=sqlite_url, LOG_FORMAT="json"), lifespan=lifespan)


def failed_five_times(connection: Connection) -> None:
    connection.execute(insert(jobs).values(name="report", failures=5, last_error="RuntimeError: boom"))


async def test_a_job_declared_in_the_lifespan_shows_in_health(sqlite_url: str) -> None:
    """Before its first run the job is listed, waiting, and the check passes."""
    app = make_app(sqlite_url)
    async with (
        running(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client,
    ):
        check = (await client.get("/health")).json()["checks"]["periodic_jobs"]
    report = check["jobs"]["report"]
    assert check["status"] == "ok"
    assert (report["state"], report["failures_in_a_row"]) == ("waiting", 0)
    assert datetime.fromisoformat(report["next_run"]) > datetime.now(UTC)  # when the schedule first calls it


async def test_a_degraded_job_fails_its_check_but_the_worker_stays_ready(sqlite_url: str) -> None:
    """Five failures in a row: /health shows the job degraded, /health/ready still answers 200."""
    app = make_app(sqlite_url)
    async with (
        running(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client,
    ):
        state: ServiceState = app.state.lastro
        await state.transactions.write(failed_five_times)
        health = await client.get("/health")
        ready = await client.get("/health/ready")
    check = health.json()["checks"]["periodic_jobs"]
    assert (health.status_code, ready.status_code) == (200, 200)
    assert check["status"] == "error"
    assert check["error"] == "degraded: report"
    assert check["jobs"]["report"]["state"] == "degraded"


@pytest.mark.redis
async def test_with_redis_url_the_leases_are_redis_keys_released_at_shutdown(sqlite_url: str) -> None:
    """REDIS_URL: the job's leader holds a Redis key, given up when the service stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.lastro.jobs.add(name, nothing, every=3600)
        yield

    name = f"test-{uuid.uuid4().hex}"
    key = f"lastro:lease:job:{name}"
    settings = get_settings(DATABASE_URL=sqlite_url, LOG_FORMAT="json", REDIS_URL=REDIS_URL)
    app = create_app(settings, lifespan=lifespan)
    async with redis.asyncio.Redis.from_url(REDIS_URL) as client:
        async with running(app):
            holder = app.state.lastro.jobs.holder
            for _ in range(500):  # the loop takes the lease as soon as it starts
                if await client.get(key):
                    break
                await asyncio.sleep(0.01)
            assert (await client.get(key)).decode() == holder
        assert await client.get(key) is None
