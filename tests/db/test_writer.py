"""SQLiteWriter: a unit runs inline when nobody else writes; queued units share a transaction (a savepoint
each); results come after COMMIT. "Another worker" is a second WriteLock on the same file, holding it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from lastro.db import sqlite
from lastro.db.engine import Database
from lastro.db.write_lock import WriteLock
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


async def queued_together(
    database: Database,
    writer: SQLiteWriter,
    units: list[Callable[[Connection], Any]],
    *,
    cancel: int | None = None,
    tasks: list[asyncio.Future[Any]] | None = None,
) -> list[Any]:
    """Queue `units` while the writer thread is busy with a unit of its own: they form the next batch.

    The thread gets that first unit because another worker holds the lock when it is submitted. `cancel`:
    the index of a unit whose caller gives up while it waits in the queue. `tasks` receives the callers.
    """
    started, finish = threading.Event(), threading.Event()

    def busy(_: Connection) -> None:
        started.set()
        finish.wait(5)

    other_worker = WriteLock(database.sqlite_path)
    other_worker.acquire()
    first = asyncio.ensure_future(writer.submit(busy))
    await asyncio.sleep(0)
    other_worker.release()
    other_worker.close()
    await asyncio.to_thread(started.wait, 5)
    callers = [asyncio.ensure_future(writer.submit(unit)) for unit in units]
    if tasks is not None:
        tasks.extend(callers)
    await asyncio.sleep(0)
    if cancel is not None:
        callers[cancel].cancel()
        await asyncio.sleep(0)  # the cancellation reaches the queued unit before the thread takes it
    finish.set()
    await first
    return await asyncio.gather(*callers, return_exceptions=True)


async def test_an_uncontended_unit_runs_inline(database: Database, writer: SQLiteWriter) -> None:
    """With nothing queued and the lock free, the unit runs at once, in a transaction of its own."""
    assert await writer.submit(insert("ada")) == "ada"
    assert names(database) == ["ada"]
    assert (writer.inline, writer.transactions) == (1, 1)


async def test_a_database_locked_outside_lastro_sends_the_unit_to_the_thread(
    database: Database, writer: SQLiteWriter
) -> None:
    """A program that is not lastro holds SQLite's lock: the inline try does not wait, the thread does."""
    assert database.sqlite_path is not None
    outsider = sqlite.driver().connect(str(database.sqlite_path), isolation_level=None)
    outsider.execute("BEGIN IMMEDIATE")
    task = asyncio.ensure_future(writer.submit(insert("ada")))
    await asyncio.sleep(0)
    outsider.execute("COMMIT")
    outsider.close()
    assert await task == "ada"
    assert writer.inline == 0
    assert names(database) == ["ada"]


async def test_queued_units_share_one_transaction(database: Database, writer: SQLiteWriter) -> None:
    """Ten units queued behind a busy writer commit in one transaction, each with its result."""
    results = await queued_together(database, writer, [insert(f"n{i}") for i in range(10)])
    assert results == [f"n{i}" for i in range(10)]
    assert names(database) == sorted(f"n{i}" for i in range(10))
    assert (writer.units, writer.transactions) == (11, 2)


async def test_a_failing_unit_rolls_back_only_itself(database: Database, writer: SQLiteWriter) -> None:
    """A unit that raises gets its exception and leaves nothing behind; its neighbours commit."""
    results = await queued_together(database, writer, [insert("ada"), fail, insert("bob")])
    assert [results[0], results[2]] == ["ada", "bob"]
    assert isinstance(results[1], LookupError)
    assert names(database) == ["ada", "bob"]


async def test_a_lost_shared_transaction_reruns_each_unit_alone(
    database: Database, writer: SQLiteWriter
) -> None:
    """A unit that ends the shared transaction fails alone; the others are run again and commit."""
    results = await queued_together(database, writer, [insert("ada"), end_the_transaction, insert("bob")])
    assert [results[0], results[2]] == ["ada", "bob"]
    assert isinstance(results[1], LookupError)
    assert names(database) == ["ada", "bob"]


async def test_a_cancelled_unit_is_not_run(database: Database, writer: SQLiteWriter) -> None:
    """A caller that gave up before its turn (a client gone) never writes."""
    results = await queued_together(database, writer, [insert("gone"), insert("kept")], cancel=0)
    assert isinstance(results[0], asyncio.CancelledError)
    assert results[1] == "kept"
    assert names(database) == ["kept"]


async def test_close_finishes_queued_units_then_refuses(database: Database) -> None:
    """Units queued before close() commit; a unit submitted after is refused."""
    writer = SQLiteWriter(database)
    other_worker = WriteLock(database.sqlite_path)
    other_worker.acquire()
    pending: Coroutine[Any, Any, str] = writer.submit(insert("ada"))
    task = asyncio.ensure_future(pending)
    await asyncio.sleep(0)
    other_worker.release()
    other_worker.close()
    await asyncio.to_thread(writer.close)
    assert await task == "ada"
    with pytest.raises(RuntimeError, match="closed"):
        await writer.submit(insert("bob"))


def thread_of(_: Connection) -> tuple[str, bool]:
    thread = threading.current_thread()
    return thread.name, thread.daemon


async def test_inline_units_are_counted_each(database: Database, writer: SQLiteWriter) -> None:
    """Two inline units count two units, two inline runs and two transactions."""
    await writer.submit(insert("ada"))
    await writer.submit(insert("bob"))
    assert (writer.units, writer.inline, writer.transactions) == (2, 2, 2)


async def test_queued_units_run_on_the_writer_thread(database: Database, writer: SQLiteWriter) -> None:
    """A queued unit runs on lastro's writer thread, a daemon that never keeps the process alive."""
    assert await queued_together(database, writer, [thread_of]) == [("lastro-db-write", True)]


async def test_a_failing_unit_in_a_batch_costs_no_extra_transaction(
    database: Database, writer: SQLiteWriter
) -> None:
    """The failing unit is rolled back to its savepoint: the batch commits once, all its units counted."""
    await queued_together(database, writer, [insert("ada"), fail, insert("bob")])
    assert (writer.units, writer.transactions) == (4, 2)


async def test_a_single_queued_unit_runs_alone(database: Database, writer: SQLiteWriter) -> None:
    """A queued unit alone in its batch that fails costs no transaction and counts no unit."""
    results = await queued_together(database, writer, [fail])
    assert isinstance(results[0], LookupError)
    assert (writer.units, writer.transactions) == (1, 1)


async def test_two_queued_units_share_a_transaction(database: Database, writer: SQLiteWriter) -> None:
    """Two units queued together are already a batch: one transaction for both."""
    await queued_together(database, writer, [insert("ada"), insert("bob")])
    assert (writer.units, writer.transactions) == (3, 2)


async def test_a_batch_holds_at_most_max_batch_units(database: Database) -> None:
    """Three units queued behind a writer of max_batch=2 take two transactions."""
    writer = SQLiteWriter(database, max_batch=2)
    try:
        results = await queued_together(database, writer, [insert("a"), insert("b"), insert("c")])
        assert results == ["a", "b", "c"]
        assert (writer.units, writer.transactions) == (4, 3)
    finally:
        writer.close()


async def test_a_closed_writer_says_so(database: Database) -> None:
    """A unit submitted to a closed writer is refused with the reason."""
    writer = SQLiteWriter(database)
    writer.close()
    with pytest.raises(RuntimeError) as refused:
        await writer.submit(insert("ada"))
    assert str(refused.value) == "the SQLite writer is closed"


async def test_a_failing_unit_in_a_batch_raises_to_its_caller(
    database: Database, writer: SQLiteWriter
) -> None:
    """The caller of a unit that failed inside a batch gets its exception raised, not returned."""
    callers: list[asyncio.Future[Any]] = []
    await queued_together(database, writer, [insert("ada"), fail], tasks=callers)
    assert isinstance(callers[1].exception(), LookupError)
    assert callers[0].exception() is None


async def test_close_stops_the_writer_thread(database: Database) -> None:
    """Once close() returns, the thread that ran the queued units is gone."""
    writer = SQLiteWriter(database)
    [thread] = await queued_together(database, writer, [lambda _: threading.current_thread()])
    assert thread.is_alive()
    await asyncio.to_thread(writer.close)
    assert not thread.is_alive()
