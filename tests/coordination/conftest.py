"""Workers of one backend for the transport tests: each a `Broadcast` on a transport of its own, running.

`backend` is parametrized over the three real backends; `worker(...)` opens one more worker on the same
backend (the same SQLite file, PostgreSQL database or Redis key prefix), as another process would.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
import redis

from lastro.coordination.events import Broadcast, Transport
from lastro.coordination.postgres_events import PostgresTransport
from lastro.coordination.redis_events import RedisTransport
from lastro.coordination.sqlite_events import SQLiteTransport
from lastro.coordination.tables import ensure_tables
from lastro.db.engine import Database
from lastro.db.transactions import Transactions
from tests.support.databases import postgres_url_for, scratch_database

REDIS_URL = "redis://127.0.0.1:6379/0"

Clock = Callable[[], float]
Opener = Callable[[Clock], Transport]
Workers = Callable[..., AbstractAsyncContextManager[Broadcast]]


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of the test's own on the shared Redis; its keys are deleted afterwards."""
    prefix = f"lastro-test-{uuid.uuid4().hex[:12]}:events"
    yield prefix
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'events.db'}")
    ensure_tables(database)
    yield database
    database.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of the test's own, with lastro's tables; dropped afterwards."""
    with scratch_database("lastro_events") as name:
        url = postgres_url_for(name)
        database = Database(url)
        ensure_tables(database)
        database.dispose()
        yield url


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def open_transport(request: pytest.FixtureRequest) -> Iterator[Opener]:
    """Opens a transport of the backend on the test's shared place; disposes of what it opened."""
    databases: list[Database] = []
    if request.param == "sqlite":
        url = str(request.getfixturevalue("sqlite_database").url)

        def opener(clock: Clock) -> Transport:
            databases.append(database := Database(url))
            return SQLiteTransport(database, clock=clock)

    elif request.param == "postgres":
        url = request.getfixturevalue("postgres_url")

        def opener(clock: Clock) -> Transport:
            databases.append(database := Database(url))
            return PostgresTransport(database, clock=clock)

    else:
        prefix = request.getfixturevalue("redis_prefix")

        def opener(clock: Clock) -> Transport:
            return RedisTransport(REDIS_URL, timeout=2.0, prefix=prefix, clock=clock)

    yield opener
    for database in databases:
        database.dispose()


@asynccontextmanager
async def running(transport: Transport) -> AsyncIterator[Broadcast]:
    """`transport` under a running `Broadcast`, caught up, for the block."""
    broadcast = Broadcast(transport)
    task = asyncio.create_task(broadcast.run())
    try:
        await asyncio.wait_for(broadcast.catch_up(), 10)
        yield broadcast
    finally:
        await broadcast.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
def worker(open_transport: Opener) -> Workers:
    """One more worker on the backend, running for the block."""

    def open_worker(clock: Clock = time.time) -> AbstractAsyncContextManager[Broadcast]:
        return running(open_transport(clock))

    return open_worker


async def wait_until(condition: Callable[[], object], seconds: float = 10.0) -> None:
    """Poll `condition` until true; fail after `seconds`."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not become true in time")


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    with scratch_database("lastro_coordination") as name:
        yield postgres_url_for(name)


@pytest.fixture
def transactions(database_url: str) -> Iterator[Transactions]:
    database = Database(database_url)
    ensure_tables(database)
    units = Transactions(database)
    yield units
    units.close()
    database.dispose()
