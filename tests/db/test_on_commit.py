"""`on_commit`: callbacks of a write unit run after its COMMIT, only for the attempt that committed."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from lastro import on_commit
from lastro.db.engine import Database
from lastro.db.transactions import Transactions
from lastro.db.write_lock import WriteLock
from tests.db.conftest import Backend

pytestmark = pytest.mark.anyio


def _insert(connection: Connection, table: str, name: str) -> None:
    connection.execute(text(f"INSERT INTO {table} (name) VALUES (:name)"), {"name": name})


async def test_callbacks_run_after_the_commit_in_order(backend: Backend, transactions: Transactions) -> None:
    """Sync and async callbacks run in the order registered, each seeing the unit's row committed."""
    seen: list[tuple[str, list[str]]] = []

    async def later() -> None:
        await asyncio.sleep(0)
        seen.append(("async", backend.names()))

    def work(connection: Connection) -> str:
        _insert(connection, backend.table, "ada")
        on_commit(connection, lambda: seen.append(("sync", backend.names())))
        on_commit(connection, later)
        return "done"

    assert await transactions.write(work) == "done"
    assert seen == [("sync", ["ada"]), ("async", ["ada"])]


async def test_a_unit_that_raises_runs_none(backend: Backend, transactions: Transactions) -> None:
    """A rolled-back unit's callbacks never run."""
    ran: list[str] = []

    def work(connection: Connection) -> None:
        on_commit(connection, lambda: ran.append("callback"))
        raise LookupError("order 7 not found")

    with pytest.raises(LookupError):
        await transactions.write(work)
    assert ran == []


async def test_a_retried_unit_runs_only_the_committed_attempts_callbacks(
    backend: Backend, transactions: Transactions
) -> None:
    """After a transient failure, what the failed attempt registered is void."""
    ran: list[int] = []
    attempts: list[int] = []

    def work(connection: Connection) -> None:
        attempts.append(len(attempts) + 1)
        attempt = attempts[-1]
        on_commit(connection, lambda: ran.append(attempt))
        _insert(connection, backend.table, "ada")
        if attempt == 1:
            raise backend.transient_failure(connection)

    await transactions.write(work)
    assert attempts == [1, 2]
    assert ran == [2]


async def test_a_failing_callback_does_not_stop_the_others(
    backend: Backend, transactions: Transactions
) -> None:
    """Every callback runs; the first error then reaches the caller, with the write committed."""
    ran: list[str] = []

    def fail() -> None:
        raise ValueError("the broker is gone")

    def work(connection: Connection) -> None:
        _insert(connection, backend.table, "ada")
        on_commit(connection, fail)
        on_commit(connection, lambda: ran.append("second"))

    with pytest.raises(ValueError, match="the broker is gone"):
        await transactions.write(work)
    assert ran == ["second"]
    assert backend.names() == ["ada"]


async def test_a_read_unit_cannot_register_one(backend: Backend, transactions: Transactions) -> None:
    """Outside a write unit there is no commit to wait for: a clear error, not a silent no-op."""
    with pytest.raises(RuntimeError, match="write unit"):
        await transactions.read(lambda connection: on_commit(connection, lambda: None))


async def test_the_connection_forgets_the_unit_once_it_ends(
    backend: Backend, transactions: Transactions
) -> None:
    """The pooled connection keeps nothing of a unit: the next read unit on it cannot register."""
    await transactions.write(lambda connection: on_commit(connection, lambda: None))
    with pytest.raises(RuntimeError):
        await transactions.read(lambda connection: on_commit(connection, lambda: None))


async def test_units_batched_in_one_sqlite_transaction_keep_their_own_callbacks(tmp_path: Path) -> None:
    """Units queued into one SQLite transaction: each runs its own callbacks, one that raised runs none."""
    database = Database(f"sqlite:///{tmp_path / 'batch.db'}")
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE names (name TEXT PRIMARY KEY)"))
    transactions = Transactions(database)
    started, finish = threading.Event(), threading.Event()
    ran: list[str] = []

    def busy(_: Connection) -> None:  # holds the writer thread while the others queue behind it
        started.set()
        finish.wait(5)

    def work(connection: Connection, name: str) -> None:
        _insert(connection, "names", name)
        on_commit(connection, lambda: ran.append(name))
        if name == "bad":
            raise LookupError(name)

    try:
        other_worker = WriteLock(database.sqlite_path)  # so the first unit goes to the writer thread
        other_worker.acquire()
        first = asyncio.ensure_future(transactions.write(busy))
        await asyncio.sleep(0)
        other_worker.release()
        other_worker.close()
        await asyncio.to_thread(started.wait, 5)
        names = [f"n{index}" for index in range(10)] + ["bad"]
        callers = [asyncio.ensure_future(transactions.write(work, name)) for name in names]
        await asyncio.sleep(0)
        finish.set()
        await first
        results = await asyncio.gather(*callers, return_exceptions=True)
        writes = transactions.stats()["writes"]
        with database.engine.connect() as connection:
            stored = list(connection.execute(text("SELECT name FROM names ORDER BY name")).scalars())
    finally:
        transactions.close()
        database.dispose()
    assert isinstance(results[-1], LookupError)
    assert (writes["units"], writes["transactions"]) == (12, 2)  # the busy one, then one batch of 11
    assert sorted(ran) == sorted(names[:-1]) == stored
