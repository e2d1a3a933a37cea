"""A database per test for the unit-of-work tests, on SQLite and on PostgreSQL, with a real transient
failure of each: a SQLite write lock held by another connection, a PostgreSQL SQLSTATE 40001."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc

from lastro.db import sqlite
from lastro.db.engine import Database
from lastro.db.retry import RetryPolicy, StopAfterAttempt
from lastro.db.transactions import Transactions
from tests.conftest import POSTGRES_URL
from tests.support.clock import FakeTime


@dataclass
class Backend:
    name: str
    database: Database
    table: str
    transient_failure: Callable[[Connection], Exception]

    def names(self) -> list[str]:
        with self.database.engine.connect() as connection:
            return list(connection.execute(text(f"SELECT name FROM {self.table} ORDER BY name")).scalars())


def _sqlite_lock_error(path: Path) -> Callable[[Connection], Exception]:
    """Inside a write unit (which holds the write lock), a second writer gets a real "database is locked"."""

    def failure(_: Connection) -> Exception:
        other = sqlite.driver().connect(str(path), isolation_level=None, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite.driver().OperationalError as error:
            return error
        finally:
            other.close()
        raise AssertionError("the write unit did not hold the write lock")

    return failure


def _postgres_serialization_error(connection: Connection) -> Exception:
    """The server raises SQLSTATE 40001 (serialization_failure) in this unit's transaction."""
    try:
        connection.exec_driver_sql(
            "DO $$ BEGIN RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001'; END $$"
        )
    except sa_exc.OperationalError as error:
        return error
    raise AssertionError("the server did not raise")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A database with a table `(name TEXT PRIMARY KEY)` of its own; on PostgreSQL, dropped afterwards."""
    if request.param == "sqlite":
        path = tmp_path / "units.db"
        database = Database(f"sqlite:///{path}")
        table, failure = "names", _sqlite_lock_error(path)
    else:
        database = Database(POSTGRES_URL)
        table, failure = f"lastro_test_units_{uuid.uuid4().hex[:12]}", _postgres_serialization_error
    with database.engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {table} (name TEXT PRIMARY KEY)"))
    yield Backend(request.param, database, table, failure)
    database.dispose()
    if request.param == "postgres":
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def transactions(backend: Backend, fake_time: FakeTime) -> Iterator[Transactions]:
    policy = RetryPolicy(stop=StopAfterAttempt(3), sleep=fake_time.sleep, clock=fake_time.clock)
    transactions = Transactions(backend.database, retry=policy)
    yield transactions
    transactions.close()
