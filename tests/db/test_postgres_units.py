"""PostgreSQL units of work: reads as bare statements the server keeps read-only, writes in a transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, event, text

from lastro.db.engine import Database, DatabaseOptions
from lastro.db.transactions import Transactions
from tests.conftest import POSTGRES_URL
from tests.support.databases import scratch_table

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
def table() -> Iterator[str]:
    with scratch_table("lastro_test_pg_units", "name TEXT PRIMARY KEY") as name:
        yield name


@pytest.fixture
def transactions() -> Iterator[Transactions]:
    """Units on one thread, over a pool of two connections: the thread's, and the spare."""
    database = Database(POSTGRES_URL, DatabaseOptions(pool_size=2, max_overflow=0))
    transactions = Transactions(database)
    yield transactions
    transactions.close()
    database.dispose()


def _status(connection: Connection) -> TransactionStatus:
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver.info.transaction_status


async def test_a_read_unit_runs_its_statements_outside_a_transaction(transactions: Transactions) -> None:
    """No BEGIN and no COMMIT around a read: after its statement the session is idle, not in a transaction."""

    def read(connection: Connection) -> tuple[int, TransactionStatus]:
        return connection.execute(text("SELECT 1")).scalar_one(), _status(connection)

    assert await transactions.read(read) == (1, TransactionStatus.IDLE)


async def test_a_write_unit_runs_in_a_transaction_after_a_read_on_its_connection(
    transactions: Transactions, table: str
) -> None:
    """The connection a read unit handed back begins the next write unit's transaction READ WRITE."""

    def write(connection: Connection) -> TransactionStatus:
        connection.execute(text(f"INSERT INTO {table} (name) VALUES ('ada')"))
        return _status(connection)

    def names(connection: Connection) -> list[str]:
        return list(connection.execute(text(f"SELECT name FROM {table}")).scalars())

    assert await transactions.read(names) == []
    assert await transactions.write(write) == TransactionStatus.INTRANS
    assert await transactions.read(names) == ["ada"]


async def test_a_read_unit_sees_each_commit_as_its_statement_begins(
    transactions: Transactions, table: str
) -> None:
    """A read's second statement sees a row committed after its first, as in a READ COMMITTED transaction."""

    def read_twice(connection: Connection) -> tuple[int, int]:
        count = text(f"SELECT count(*) FROM {table}")
        before = connection.execute(count).scalar_one()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as other:
            other.execute(sql.SQL("INSERT INTO {} (name) VALUES ('bob')").format(sql.Identifier(table)))
        return before, connection.execute(count).scalar_one()

    assert await transactions.read(read_twice) == (0, 1)


async def test_a_write_unit_may_roll_back_to_a_savepoint(transactions: Transactions, table: str) -> None:
    """A nested transaction inside a write unit rolls back alone; the unit's other writes commit."""

    def write(connection: Connection) -> None:
        connection.execute(text(f"INSERT INTO {table} (name) VALUES ('kept')"))
        nested = connection.begin_nested()
        connection.execute(text(f"INSERT INTO {table} (name) VALUES ('undone')"))
        nested.rollback()

    def names(connection: Connection) -> list[str]:
        return list(connection.execute(text(f"SELECT name FROM {table}")).scalars())

    await transactions.write(write)
    assert await transactions.read(names) == ["kept"]


async def test_a_write_unit_that_raises_leaves_nothing(transactions: Transactions, table: str) -> None:
    """A write unit that raises after writing is rolled back, and its connection serves the next unit."""

    def fail(connection: Connection) -> None:
        connection.execute(text(f"INSERT INTO {table} (name) VALUES ('ada')"))
        raise LookupError("no such thing")

    def count(connection: Connection) -> int:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

    with pytest.raises(LookupError):
        await transactions.write(fail)
    assert await transactions.read(count) == 0


def _count_checkouts(database: Database) -> list[int]:
    checkouts = [0]

    def checked_out(*_: object) -> None:
        checkouts[0] += 1

    event.listen(database.engine.pool, "checkout", checked_out)
    return checkouts


async def test_units_queued_behind_each_other_share_one_checkout(transactions: Transactions) -> None:
    """Units queued on the one thread run on the connection it kept: one check-out for all, handed back
    to the pool once no unit waits."""
    database = transactions.database
    checkouts = _count_checkouts(database)

    def backend(connection: Connection) -> int:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return pid

    pids = await asyncio.gather(*(transactions.read(backend) for _ in range(5)))
    assert len(set(pids)) == 1
    assert checkouts[0] == 1
    assert database.pool_status()["checked_out"] == 0


async def test_a_unit_alone_hands_its_connection_back(transactions: Transactions) -> None:
    """With no unit queued behind it, a unit's connection goes back to the pool as the unit ends."""
    database = transactions.database
    checkouts = _count_checkouts(database)

    def read(connection: Connection) -> int:
        return int(connection.execute(text("SELECT 1")).scalar_one())

    for _ in range(3):
        assert await transactions.read(read) == 1
        assert database.pool_status()["checked_out"] == 0
    assert checkouts[0] == 3


async def test_a_unit_that_fails_does_not_hand_its_connection_on(
    transactions: Transactions, table: str
) -> None:
    """After a unit raises, the units queued behind it get a connection checked in and out again."""
    database = transactions.database
    checkouts = _count_checkouts(database)

    def fail(connection: Connection) -> None:
        raise LookupError("no such thing")

    def read(connection: Connection) -> int:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

    results = await asyncio.gather(transactions.write(fail), transactions.read(read), return_exceptions=True)
    assert isinstance(results[0], LookupError)
    assert results[1] == 0
    assert checkouts[0] == 2
    assert database.pool_status()["checked_out"] == 0


async def test_a_held_connection_that_died_is_replaced_for_the_unit_on_it(transactions: Transactions) -> None:
    """A server process that ends while its connection is held between queued units: the next unit fails
    on it, runs again at once on a new connection, and every unit returns."""

    def backend(connection: Connection) -> int:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return pid

    def backend_then_terminated(connection: Connection) -> int:
        pid = backend(connection)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return pid

    first, *rest = await asyncio.gather(
        transactions.read(backend_then_terminated), *(transactions.read(backend) for _ in range(4))
    )
    assert len(set(rest)) == 1
    assert first not in rest
    assert transactions.reconnects == 1
    assert transactions.database.pool_status()["checked_out"] == 0
