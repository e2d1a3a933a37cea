"""DB_STATEMENT_TIMEOUT through a real route: a statement past it answers 503 problem+json, never a 500.

PostgreSQL cancels the statement itself (`statement_timeout`, SQLSTATE 57014); lastro counts that as an
overloaded database (`lastro.db.failures`): not retried, not held against the circuit breaker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, text

from lastro import ReadUnit, WriteUnit, create_app
from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.settings import get_settings
from tests.conftest import POSTGRES_URL
from tests.support.lifespan import running

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

TIMEOUT = 1.0  # seconds; the statements below would sleep 5. Shorter fails start-ups on a busy machine.


def sleep_for(connection: Connection, seconds: float) -> float:
    return float(connection.execute(text("SELECT pg_sleep(:s), :s"), {"s": seconds}).one()[1])


def make_app() -> FastAPI:
    settings = get_settings(DATABASE_URL=POSTGRES_URL, DB_STATEMENT_TIMEOUT=TIMEOUT, DB_POOL_SIZE=2)
    app = create_app(settings)

    @app.get("/read-sleep")
    async def read_sleep(unit: ReadUnit, seconds: float) -> dict[str, float]:
        return {"slept": await unit.run(sleep_for, seconds)}

    @app.post("/write-sleep")
    async def write_sleep(unit: WriteUnit, seconds: float) -> dict[str, float]:
        return {"slept": await unit.run(sleep_for, seconds)}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = make_app()
    transport = httpx.ASGITransport(app=app)
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def is_overloaded(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and response.headers["content-type"] == PROBLEM_CONTENT_TYPE
        and "Retry-After" in response.headers
        and "canceling statement due to statement timeout" in response.json()["detail"]
    )


async def test_a_read_past_the_statement_timeout_is_a_503_problem(client: httpx.AsyncClient) -> None:
    """pg_sleep(5) in a read unit under a 1 s statement timeout: 503 problem+json with Retry-After."""
    assert is_overloaded(await client.get("/read-sleep", params={"seconds": 5}))


async def test_a_write_past_the_statement_timeout_is_a_503_problem(client: httpx.AsyncClient) -> None:
    """The same in a write unit: cancelled by the server, answered 503, not retried into a 500."""
    assert is_overloaded(await client.post("/write-sleep", params={"seconds": 5}))


async def test_a_statement_within_the_timeout_is_served(client: httpx.AsyncClient) -> None:
    """A statement shorter than the timeout completes, and the pool serves it after a cancelled one."""
    assert is_overloaded(await client.get("/read-sleep", params={"seconds": 5}))
    response = await client.get("/read-sleep", params={"seconds": 0.01})
    assert (response.status_code, response.json()) == (200, {"slept": 0.01})
