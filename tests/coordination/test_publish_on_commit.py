"""`Broadcast.publish_on_commit` on the real backends: the event goes with its write unit, or not at all.

On SQLite and PostgreSQL the write unit runs on the transport's own database (the service's), so the event
is written in the unit's transaction; with Redis it is published once the unit has committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import Connection, text

from lastro.coordination.events import Broadcast
from lastro.coordination.redis_events import RedisTransport
from lastro.coordination.sqlite_events import SQLiteTransport
from lastro.coordination.tables import ensure_tables
from lastro.db.engine import Database
from lastro.db.transactions import Transactions
from tests.coordination.conftest import Workers
from tests.support.process import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def units(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Transactions]:
    """Write units on the backend's database (SQLite, PostgreSQL), or on a SQLite file beside Redis."""
    backend = request.node.callspec.params["open_transport"]
    if backend == "sqlite":
        url = str(request.getfixturevalue("sqlite_database").url)
    elif backend == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'service.db'}"
    database = Database(url)
    ensure_tables(database)
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS notes (body TEXT NOT NULL)"))
    transactions = Transactions(database)
    yield transactions
    transactions.close()
    database.dispose()


def _write(broadcast: Broadcast, body: str, *, fail: bool = False) -> Callable[[Connection], None]:
    def work(connection: Connection) -> None:
        connection.execute(text("INSERT INTO notes (body) VALUES (:body)"), {"body": body})
        broadcast.publish_on_commit(connection, "notes", {"body": body})
        if fail:
            raise LookupError(body)

    return work


async def test_a_committed_unit_publishes_its_event(worker: Workers, units: Transactions) -> None:
    """Once the unit has returned, a subscriber on another worker receives its event."""
    async with worker() as one, worker() as two, two.subscribe("notes") as events:
        await units.write(_write(one, "first"))
        received = await asyncio.wait_for(events.get(), 10)
    assert received.data == {"body": "first"}


async def test_a_unit_that_raises_publishes_nothing(worker: Workers, units: Transactions) -> None:
    """The rolled-back write announces nothing: the next event a subscriber gets is the next write's."""
    async with worker() as one, worker() as two, two.subscribe("notes") as events:
        with pytest.raises(LookupError):
            await units.write(_write(one, "rolled back", fail=True))
        await units.write(_write(one, "kept"))
        received = await asyncio.wait_for(events.get(), 10)
    assert received.data == {"body": "kept"}


async def test_concurrent_units_announce_in_one_order_everywhere(
    worker: Workers, units: Transactions
) -> None:
    """Twenty writes at once: both workers' subscribers see all twenty, in the same id order."""
    async with (
        worker() as one,
        worker() as two,
        one.subscribe("notes") as first,
        two.subscribe("notes") as second,
    ):
        await asyncio.gather(*(units.write(_write(one, f"n{n}")) for n in range(20)))
        seen = [[(await asyncio.wait_for(e.get(), 10)).id for _ in range(20)] for e in (first, second)]
    assert seen[0] == seen[1] == sorted(seen[0])


@pytest.mark.parametrize("open_transport", ["sqlite"], indirect=True)
async def test_on_sqlite_the_event_is_in_the_units_transaction(worker: Workers, units: Transactions) -> None:
    """One transaction writes the note and its event: no transaction of the transport's own."""
    async with worker() as one:
        before = units.stats()["writes"]["transactions"]
        await units.write(_write(one, "one"))
        assert units.stats()["writes"]["transactions"] == before + 1
        transport = one.transport
        assert isinstance(transport, SQLiteTransport)
        assert transport._writer.transactions == 0


@pytest.mark.redis
async def test_a_broker_away_after_the_commit_is_logged_not_raised(tmp_path: Path) -> None:
    """Redis unreachable: the write is kept and returns, one warning names the channel."""
    database = Database(f"sqlite:///{tmp_path / 'service.db'}")
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (body TEXT NOT NULL)"))
    units = Transactions(database)
    gone = RedisTransport(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5, prefix="lastro-test:gone")
    broadcast = Broadcast(gone)  # not running: publishing still goes through the transport
    try:
        with structlog.testing.capture_logs() as logs:
            await units.write(_write(broadcast, "kept"))
        with database.engine.connect() as connection:
            assert connection.execute(text("SELECT body FROM notes")).scalars().all() == ["kept"]
        assert [(line["event"], line["channel"]) for line in logs if line["log_level"] == "warning"] == [
            ("event not published after its write committed", "notes")
        ]
    finally:
        await gone.close()
        units.close()
        database.dispose()
