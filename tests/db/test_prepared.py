"""Prepared: a Core statement run on the driver's cursor gives what Connection.execute gives, on SQLite and
PostgreSQL, and goes through Connection.execute where it could not run the same way.

Which way a statement went is told by SQLAlchemy's own `before_cursor_execute` event, which only
Connection.execute fires.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    event,
    exc,
    insert,
    select,
    text,
    update,
)

from lastro.db.engine import Database
from lastro.db.prepared import Prepared
from tests.conftest import POSTGRES_URL

AT = datetime(2026, 12, 7, 18, 30, 15, 123456)


@dataclass
class Store:
    database: Database
    table: Table
    through_sqlalchemy: list[str] = field(default_factory=list)  # the statements Connection.execute ran


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A table of every column type the orders service stores, with two rows, on each backend."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'prepared.db'}")
    else:
        database = Database(POSTGRES_URL)
    table = Table(
        f"lastro_test_prepared_{uuid.uuid4().hex[:12]}",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String(50), nullable=False),
        Column("doc", JSON),
        Column("at", DateTime),
        Column("price", Numeric(10, 2)),
        Column("flag", Boolean),
        Column("source", String(20), default="python"),  # a Python-side default
    )
    table.metadata.create_all(database.engine)
    with database.engine.begin() as connection:
        connection.execute(
            insert(table),
            [
                {
                    "id": 1,
                    "name": "anvil",
                    "doc": {"tags": ["a", "b"], "n": 1},
                    "at": AT,
                    "price": Decimal("9.50"),
                    "flag": False,
                },
                {"id": 2, "name": "rope", "doc": None, "at": None, "price": Decimal("1.25"), "flag": True},
            ],
        )
    found = Store(database, table)

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        found.through_sqlalchemy.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    yield found
    table.metadata.drop_all(database.engine)
    database.dispose()


def rows_of(connection: Connection, statement: Any, **params: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in connection.execute(statement, params)]


def test_a_select_gives_what_connection_execute_gives(store: Store) -> None:
    """JSON, times, decimals, booleans and NULLs come back converted as SQLAlchemy converts them."""
    statement = select(store.table).where(store.table.c.id >= bindparam("least")).order_by(store.table.c.id)
    with store.database.engine.connect() as connection, connection.begin():
        expected = rows_of(connection, statement, least=1)
        store.through_sqlalchemy.clear()
        rows = Prepared(statement).all(connection, least=1)
    assert [tuple(row) for row in rows] == expected
    assert rows[0].doc == {"tags": ["a", "b"], "n": 1}
    assert (rows[0].at, rows[0].price, rows[1].flag) == (AT, Decimal("9.50"), True)
    assert store.through_sqlalchemy == []


def test_rows_are_named_tuples(store: Store) -> None:
    """A row reads by column name, by index and by unpacking."""
    statement = select(store.table.c.id, store.table.c.name).where(store.table.c.id == bindparam("id"))
    with store.database.engine.connect() as connection, connection.begin():
        row = Prepared(statement).first(connection, id=2)
    assert row is not None
    number, name = row
    assert (row.id, row[1], number, name) == (2, "rope", 2, "rope")


def test_an_insert_stores_what_connection_execute_would(store: Store) -> None:
    """An INSERT's columns are the parameters a call gives; RETURNING gives the id; the values convert."""
    statement = Prepared(insert(store.table).returning(store.table.c.id))
    with store.database.engine.connect() as connection, connection.begin():
        first = statement.scalar_one(connection, id=3, name="nail", doc={"k": [1]}, at=AT, source="given")
        second = statement.scalar_one(connection, id=4, name="saw", source="given")
        direct = list(store.through_sqlalchemy)
        stored = rows_of(connection, select(store.table).where(store.table.c.id >= 3).order_by("id"))
    assert (first, second, direct) == (3, 4, [])
    assert stored == [
        (3, "nail", {"k": [1]}, AT, None, None, "given"),
        (4, "saw", None, None, None, None, "given"),
    ]


def test_an_update_keeps_the_values_written_in_the_statement(store: Store) -> None:
    """Literals of the statement itself (a `+ 1`, a fixed value) travel with the caller's parameters."""
    statement = Prepared(
        update(store.table)
        .where(store.table.c.id == bindparam("target"))
        .values(price=store.table.c.price + 1, name="renamed")
        .returning(store.table.c.name, store.table.c.price)
    )
    with store.database.engine.connect() as connection, connection.begin():
        row = statement.one(connection, target=2)
    assert (row.name, row.price) == ("renamed", Decimal("2.25"))
    assert store.through_sqlalchemy == []


def test_a_missing_parameter_is_named(store: Store) -> None:
    """A bound parameter the call does not give is refused with its name."""
    statement = Prepared(select(store.table).where(store.table.c.id == bindparam("wanted")))
    with (
        store.database.engine.connect() as connection,
        connection.begin(),
        pytest.raises(exc.ArgumentError, match="'wanted'"),
    ):
        statement.all(connection)


def test_one_refuses_no_row_and_many_rows(store: Store) -> None:
    """one() raises SQLAlchemy's NoResultFound and MultipleResultsFound."""
    statement = Prepared(select(store.table.c.id).where(store.table.c.id >= bindparam("least")))
    with store.database.engine.connect() as connection, connection.begin():
        with pytest.raises(exc.NoResultFound):
            statement.one(connection, least=10)
        with pytest.raises(exc.MultipleResultsFound):
            statement.one(connection, least=1)
        assert statement.first(connection, least=10) is None


def test_a_driver_error_is_raised_as_sqlalchemys_and_the_unit_rolls_back(store: Store) -> None:
    """A duplicate key is SQLAlchemy's IntegrityError, with the driver's error as `orig`; nothing stays."""
    statement = Prepared(insert(store.table))

    def insert_twice(connection: Connection) -> None:
        with connection.begin():
            statement.all(connection, id=5, name="new", source="s")
            statement.all(connection, id=1, name="again", source="s")

    with store.database.engine.connect() as connection:
        with pytest.raises(exc.IntegrityError) as raised:
            insert_twice(connection)
        assert raised.value.orig is not None
        assert raised.value.connection_invalidated is False
        assert rows_of(connection, select(store.table.c.id).order_by("id")) == [(1,), (2,)]


def test_outside_a_transaction_it_goes_through_connection_execute(store: Store) -> None:
    """With no transaction begun, Connection.execute runs it (and begins one, as it would)."""
    statement = Prepared(select(store.table.c.name).where(store.table.c.id == bindparam("id")))
    with store.database.engine.connect() as connection:
        row = statement.one(connection, id=1)
        assert connection.in_transaction()
    assert (row.name, len(store.through_sqlalchemy)) == ("anvil", 1)


def test_an_in_list_goes_through_connection_execute(store: Store) -> None:
    """An expanding IN parameter is left to SQLAlchemy, with the same named rows."""
    statement = Prepared(
        select(store.table.c.id).where(store.table.c.id.in_(bindparam("ids", expanding=True)))
    )
    with store.database.engine.connect() as connection, connection.begin():
        rows = statement.all(connection, ids=[1, 2])
    assert sorted(row.id for row in rows) == [1, 2]
    assert len(store.through_sqlalchemy) == 1


def test_a_python_side_default_goes_through_connection_execute(store: Store) -> None:
    """An INSERT that leaves out a column with a Python default gets the default, from SQLAlchemy."""
    statement = Prepared(insert(store.table).returning(store.table.c.source))
    with store.database.engine.connect() as connection, connection.begin():
        assert statement.scalar_one(connection, id=6, name="hook") == "python"
    assert len(store.through_sqlalchemy) == 1


def test_options_that_change_execution_go_through_connection_execute(store: Store) -> None:
    """A connection with a schema translation runs the statement through SQLAlchemy, which applies it."""
    statement = Prepared(select(store.table.c.id).where(store.table.c.id == bindparam("id")))
    with store.database.engine.connect() as connection, connection.begin():
        translated = connection.execution_options(schema_translate_map={None: None})
        assert statement.scalar_one(translated, id=2) == 2
    assert len(store.through_sqlalchemy) == 1


def test_a_statement_with_execution_options_goes_through_connection_execute(store: Store) -> None:
    """Options on the statement itself are SQLAlchemy's to apply, so it runs the statement."""
    query = select(store.table.c.id).where(store.table.c.id == bindparam("id"))
    statement = Prepared(query.execution_options(stream_results=False))
    with store.database.engine.connect() as connection, connection.begin():
        assert statement.scalar_one(connection, id=1) == 1
    assert len(store.through_sqlalchemy) == 1


def test_a_text_clause_fragment_is_refused() -> None:
    """Only a statement can be prepared: a column or a condition is a TypeError."""
    table = Table("t", MetaData(), Column("id", Integer))
    with pytest.raises(TypeError, match="select, insert, update or delete"):
        Prepared(table.c.id == 1)


@pytest.mark.postgres
def test_a_lost_postgres_connection_is_invalidated_with_the_pools_older_ones() -> None:
    """A connection the server ended raises SQLAlchemy's error marked invalidated, and the pool replaces its
    other connections opened before it, as Connection.execute's own handling does."""
    database = Database(POSTGRES_URL)
    statement = Prepared(select(text("1")).where(bindparam("always", True)))
    try:
        with database.engine.connect() as older, database.engine.connect() as connection:
            older_driver = older.connection.driver_connection
            older.close()  # back to the pool, alive
            connection.begin()
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(exc.DBAPIError) as raised:
                statement.all(connection, always=True)
            assert raised.value.connection_invalidated
            assert connection.invalidated
        with database.engine.connect() as after:
            assert after.connection.driver_connection is not older_driver
            assert after.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        database.dispose()
