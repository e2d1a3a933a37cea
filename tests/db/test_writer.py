"""SQLiteWriter: queued write units share a transaction, each in its own savepoint, results after COMMIT."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from lastro.db.engine import Database
from lastro.db.writer import SQLiteWriter

pytestmark = pytest.mark.anyio


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'writes.db'}")
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE names (name TEXT PRIMARY KEY)"))
    yield database
    database.dispose()


@pytest.fixture
def writer(database: Database) -> Iterator[SQLiteWriter]:
    writer = SQLiteWriter(database)
    yield writer
    writer.close()


def names(database: Database) -> list[str]:
    with database.engine.connect() as connection:
        return list(connection.execute(text("SELECT name FROM names ORDER BY name")).scalars())


def insert(name: str) -> Callable[[Connection], str]:
    def unit(connection: Connection) -> str:
        connection.execute(text("INSERT INTO names (name) VALUES (:name)"), {"name": name})
        return name

    return unit


def fail(connection: Connection) -> None:
    connection.execute(text("INSERT INTO names (name) VALUES ('never stored')"))
    raise LookupError("refused by the application")


def end_the_transaction(connection: Connection) -> None:
    connection.exec_driver_sql("ROLLBACK")  # takes the shared transaction down with it
    raise LookupError("rolled back everything")


async def queued_together(writer: SQLiteWriter, units: list[Callable[[Connection], Any]]) -> list[Any]:
    """Hold the writer thread until every unit is queued, so the units form one batch."""
    release = threading.Event()
    hold = asyncio.ensure_future(writer.submit(lambda _: release.wait(5)))
    await asyncio.sleep(0)
    tasks = [asyncio.ensure_future(writer.submit(unit)) for unit in units]
    await asyncio.sleep(0)
    release.set()
    await hold
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_queued_units_share_one_transaction(database: Database, writer: SQLiteWriter) -> None:
    """Ten units queued behind a busy writer are committed in one transaction, each with its result."""
    results = await queued_together(writer, [insert(f"n{i}") for i in range(10)])
    assert results == [f"n{i}" for i in range(10)]
    assert names(database) == sorted(f"n{i}" for i in range(10))
    assert (writer.units, writer.transactions) == (11, 2)


async def test_a_failing_unit_rolls_back_only_itself(database: Database, writer: SQLiteWriter) -> None:
    """A unit that raises gets its exception and leaves nothing behind; its neighbours commit."""
    results = await queued_together(writer, [insert("ada"), fail, insert("bob")])
    assert [results[0], results[2]] == ["ada", "bob"]
    assert isinstance(results[1], LookupError)
    assert names(database) == ["ada", "bob"]


async def test_a_lost_shared_transaction_reruns_each_unit_alone(
    database: Database, writer: SQLiteWriter
) -> None:
    """A unit that ends the shared transaction fails alone; the others are run again and commit."""
    results = await queued_together(writer, [insert("ada"), end_the_transaction, insert("bob")])
    assert [results[0], results[2]] == ["ada", "bob"]
    assert isinstance(results[1], LookupError)
    assert names(database) == ["ada", "bob"]


async def test_a_cancelled_unit_is_not_run(database: Database, writer: SQLiteWriter) -> None:
    """A caller that gave up before its turn (a client gone) never writes."""
    release = threading.Event()
    hold = asyncio.ensure_future(writer.submit(lambda _: release.wait(5)))
    await asyncio.sleep(0)
    gone = asyncio.ensure_future(writer.submit(insert("gone")))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    await hold
    assert await writer.submit(insert("kept")) == "kept"
    assert names(database) == ["kept"]


async def test_close_finishes_queued_units_then_refuses(database: Database) -> None:
    """Units queued before close() commit; a unit submitted after is refused."""
    writer = SQLiteWriter(database)
    pending: Coroutine[Any, Any, str] = writer.submit(insert("ada"))
    task = asyncio.ensure_future(pending)
    await asyncio.sleep(0)
    await asyncio.to_thread(writer.close)
    assert await task == "ada"
    with pytest.raises(RuntimeError, match="closed"):
        await writer.submit(insert("bob"))
