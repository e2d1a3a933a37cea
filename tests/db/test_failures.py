"""classify(): real errors from real engines, sorted into contention, unreachable and permanent.

Every error here is produced by SQLite or by the PostgreSQL server: locks held by a second connection, a
serialization conflict, a deadlock, a terminated backend, a closed port, bad SQL, a duplicate key.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from lastro.db import sqlite
from lastro.db.engine import Database, DatabaseOptions
from lastro.db.failures import Failure, classify
from tests.conftest import POSTGRES_URL
from tests.support.databases import scratch_table


def _caught(action: Callable[[], object]) -> BaseException:
    """The error `action` raises (the test fails if it raises none)."""
    try:
        action()
    except Exception as error:
        return error
    raise AssertionError("the statement did not fail")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_retryable_only_for_contention_and_unreachable() -> None:
    """Contention and unreachable are worth retrying; permanent is not."""
    assert Failure.CONTENTION.retryable
    assert Failure.UNREACHABLE.retryable
    assert not Failure.PERMANENT.retryable
    assert not Failure.OVERLOADED.retryable
    assert not Failure.STORAGE_FULL.retryable


def test_pool_checkout_timeout_is_overloaded(tmp_path: Path) -> None:
    """No free pooled connection within the pool timeout is overload: the database itself answers."""
    options = DatabaseOptions(pool_size=1, max_overflow=0, pool_timeout=0.05)
    database = Database(f"sqlite:///{tmp_path / 'pool.db'}", options)
    try:
        held = database.engine.connect()
        error = _caught(database.engine.pool.connect)
        held.close()
    finally:
        database.dispose()
    assert isinstance(error, sa_exc.TimeoutError)
    assert classify(error) is Failure.OVERLOADED


def test_sqlite_full_is_storage_full(tmp_path: Path) -> None:
    """SQLITE_FULL (here from max_page_count, as from a full disk) is storage full, through SQLAlchemy too."""
    database = Database(f"sqlite:///{tmp_path / 'full.db'}")
    try:
        with database.engine.connect() as connection:
            connection.execute(text("CREATE TABLE blobs (data BLOB)"))
            connection.commit()
            connection.execute(text("PRAGMA max_page_count = 8"))
            statement = text("INSERT INTO blobs VALUES (zeroblob(100000))")
            error = _caught(lambda: connection.execute(statement))
    finally:
        database.dispose()
    assert "full" in str(error)
    assert classify(error) is Failure.STORAGE_FULL
    assert classify(error.orig) is Failure.STORAGE_FULL  # type: ignore[attr-defined]


# --- SQLite ---------------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_pair(tmp_path: Path) -> Iterator[tuple[Any, Any, Path]]:
    """Two raw connections to one file: the first holds the write lock, the second has no busy timeout."""
    path = tmp_path / "pair.db"
    dbapi = sqlite.driver()
    holder = dbapi.connect(str(path), isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")  # as lastro leaves every database it opens
    holder.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    holder.execute("BEGIN IMMEDIATE")
    other = dbapi.connect(str(path), isolation_level=None, timeout=0)
    yield holder, other, path
    holder.close()
    other.close()


def test_sqlite_database_is_locked_is_contention(sqlite_pair: tuple[Any, Any, Path]) -> None:
    """SQLITE_BUSY ("database is locked") from a second writer is contention."""
    _, other, _ = sqlite_pair
    error = _caught(lambda: other.execute("BEGIN IMMEDIATE"))
    assert "database is locked" in str(error)
    assert classify(error) is Failure.CONTENTION


def test_sqlite_locked_write_through_sqlalchemy_is_contention(
    sqlite_pair: tuple[Any, Any, Path],
) -> None:
    """The same lock met by a lastro engine arrives wrapped by SQLAlchemy and is still contention."""
    _, _, path = sqlite_pair
    database = Database(f"sqlite:///{path}", DatabaseOptions(sqlite_pragmas={"busy_timeout": 0}))
    try:
        with database.engine.connect() as connection:
            error = _caught(lambda: connection.execute(text("INSERT INTO t VALUES (1)")))
    finally:
        database.dispose()
    assert isinstance(error, sa_exc.OperationalError)
    assert classify(error) is Failure.CONTENTION


def test_sqlite_missing_file_is_unreachable(tmp_path: Path) -> None:
    """A database file that cannot be opened (mode=rw on a missing file) is unreachable."""
    uri = f"file:{tmp_path / 'gone.db'}?mode=rw"
    error = _caught(lambda: sqlite.driver().connect(uri, uri=True))
    assert "unable to open database file" in str(error)
    assert classify(error) is Failure.UNREACHABLE


def test_sqlite_missing_table_is_permanent(tmp_path: Path) -> None:
    """A missing table is a missing migration: retrying cannot create it, so it is not an outage."""
    connection = sqlite.driver().connect(str(tmp_path / "empty.db"))
    try:
        error = _caught(lambda: connection.execute("SELECT * FROM orders"))
    finally:
        connection.close()
    assert classify(error) is Failure.PERMANENT


def test_sqlite_syntax_error_is_permanent(tmp_path: Path) -> None:
    """A syntax error is permanent: retrying cannot fix the query."""
    connection = sqlite.driver().connect(str(tmp_path / "syntax.db"))
    try:
        error = _caught(lambda: connection.execute("SELEC 1"))
    finally:
        connection.close()
    assert "syntax error" in str(error)
    assert classify(error) is Failure.PERMANENT


def test_sqlite_integrity_error_is_permanent(tmp_path: Path) -> None:
    """A UNIQUE constraint violation, raw or wrapped by SQLAlchemy, is permanent."""
    database = Database(f"sqlite:///{tmp_path / 'integrity.db'}")
    try:
        with database.engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
            error = _caught(lambda: connection.execute(text("INSERT INTO t VALUES (1)")))
    finally:
        database.dispose()
    assert isinstance(error, sa_exc.IntegrityError)
    assert classify(error) is Failure.PERMANENT
    assert error.orig is not None
    assert classify(error.orig) is Failure.PERMANENT


# --- PostgreSQL -----------------------------------------------------------------------------------------

pg = pytest.mark.postgres
PgPair = tuple[psycopg.Connection[Any], psycopg.Connection[Any]]


@pytest.fixture
def pg_table() -> Iterator[str]:
    """A table of two rows (id 1 and 2) that only this test uses, dropped afterwards."""
    with scratch_table("lastro_test_failures", "id int PRIMARY KEY, n int NOT NULL") as name:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("INSERT INTO {} VALUES (1, 0), (2, 0)").format(sql.Identifier(name)))
        yield name


@pytest.fixture
def pg_pair() -> Iterator[PgPair]:
    first = psycopg.connect(POSTGRES_URL)
    second = psycopg.connect(POSTGRES_URL)
    yield first, second
    first.close()
    second.close()


def _update(table: str, row: int) -> sql.Composed:
    return sql.SQL("UPDATE {} SET n = n + 1 WHERE id = {}").format(sql.Identifier(table), sql.Literal(row))


@pg
def test_postgres_serialization_failure_is_contention(pg_table: str, pg_pair: PgPair) -> None:
    """40001: a SERIALIZABLE transaction updating a row changed since its snapshot is contention."""
    first, second = pg_pair
    first.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
    first.execute(sql.SQL("SELECT n FROM {} WHERE id = 1").format(sql.Identifier(pg_table)))
    second.execute(_update(pg_table, 1))
    second.commit()
    error = _caught(lambda: first.execute(_update(pg_table, 1)))
    first.rollback()
    assert getattr(error, "sqlstate", None) == "40001"
    assert classify(error) is Failure.CONTENTION


@pg
def test_postgres_deadlock_is_contention(pg_table: str, pg_pair: PgPair) -> None:
    """40P01: two transactions locking two rows in opposite order deadlock, which is contention."""
    first, second = pg_pair
    first.execute("SET deadlock_timeout = '10s'")  # the second connection is the one that detects it
    second.execute("SET deadlock_timeout = '20ms'")
    first.execute(_update(pg_table, 1))
    second.execute(_update(pg_table, 2))
    first_pid = first.info.backend_pid
    first_done: list[BaseException | None] = []

    def first_takes_row_two() -> None:
        try:
            first.execute(_update(pg_table, 2))  # waits for the second connection's lock
            first_done.append(None)
        except Exception as error:
            first_done.append(error)

    waiter = threading.Thread(target=first_takes_row_two)
    waiter.start()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as observer:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            row = observer.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (first_pid,)
            ).fetchone()
            if row is not None and row[0] == "Lock":
                break
            time.sleep(0.005)
    error = _caught(lambda: second.execute(_update(pg_table, 1)))
    second.rollback()
    waiter.join(5)
    first.rollback()
    assert first_done == [None]  # the other side went on once the victim rolled back
    assert getattr(error, "sqlstate", None) == "40P01"
    assert classify(error) is Failure.CONTENTION


@pg
def test_postgres_terminated_connection_is_unreachable(pg_pair: PgPair) -> None:
    """A connection dropped by the server (pg_terminate_backend) is unreachable."""
    first, second = pg_pair
    first.autocommit = True
    first.execute("SELECT pg_terminate_backend(%s)", (second.info.backend_pid,))
    error = _caught(lambda: second.execute("SELECT 1"))
    assert isinstance(error, psycopg.OperationalError)
    assert classify(error) is Failure.UNREACHABLE


@pg
def test_postgres_terminated_pooled_connection_through_sqlalchemy_is_unreachable() -> None:
    """A pooled connection killed under SQLAlchemy comes back as an invalidated connection: unreachable."""
    database = Database(POSTGRES_URL, DatabaseOptions(pool_pre_ping=False))
    try:
        with database.engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            error = _caught(lambda: connection.execute(text("SELECT 1")))
    finally:
        database.dispose()
    assert isinstance(error, sa_exc.DBAPIError)
    assert error.connection_invalidated
    assert classify(error) is Failure.UNREACHABLE


@pg
def test_postgres_connect_timeout_is_unreachable() -> None:
    """psycopg's ConnectionTimeout (a server that accepts and never answers) is unreachable, by class."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        error = _caught(
            lambda: psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/test", connect_timeout=1)
        )
    assert isinstance(error, psycopg.errors.ConnectionTimeout)
    assert classify(error) is Failure.UNREACHABLE


def test_postgres_closed_port_is_unreachable() -> None:
    """Connecting to a port where nothing listens fails without a SQLSTATE: unreachable."""
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/test"
    error = _caught(lambda: psycopg.connect(url, connect_timeout=1))
    assert getattr(error, "sqlstate", None) is None
    assert classify(error) is Failure.UNREACHABLE


def test_postgres_closed_port_through_sqlalchemy_is_unreachable() -> None:
    """The same refused connection, met by a lastro engine, is unreachable."""
    database = Database(f"postgresql://postgres@127.0.0.1:{_closed_port()}/test")
    try:
        error = _caught(database.ping)
    finally:
        database.dispose()
    assert isinstance(error, sa_exc.OperationalError)
    assert classify(error) is Failure.UNREACHABLE


@pg
def test_postgres_syntax_error_is_permanent(pg_pair: PgPair) -> None:
    """42601 syntax_error is permanent."""
    first, _ = pg_pair
    error = _caught(lambda: first.execute("SELEC 1"))
    first.rollback()
    assert getattr(error, "sqlstate", None) == "42601"
    assert classify(error) is Failure.PERMANENT


@pg
def test_postgres_unique_violation_is_permanent(pg_table: str) -> None:
    """23505 unique_violation, wrapped by SQLAlchemy, is permanent."""
    database = Database(POSTGRES_URL)
    try:
        with database.engine.connect() as connection:
            statement = text(f'INSERT INTO "{pg_table}" VALUES (1, 0)')
            error = _caught(lambda: connection.execute(statement))
    finally:
        database.dispose()
    assert isinstance(error, sa_exc.IntegrityError)
    assert classify(error) is Failure.PERMANENT


@pg
def test_postgres_statement_timeout_is_overloaded() -> None:
    """57014 query_canceled (statement timeout) is overload, not a server shutting down (57P0x)."""
    database = Database(POSTGRES_URL, DatabaseOptions(statement_timeout=0.05))
    try:
        with database.engine.connect() as connection:
            error = _caught(lambda: connection.execute(text("SELECT pg_sleep(2)")))
    finally:
        database.dispose()
    assert getattr(getattr(error, "orig", None), "sqlstate", None) == "57014"
    assert classify(error) is Failure.OVERLOADED


# --- the codes no server here can be made to raise on demand ----------------------------------------------
# Errors built as the drivers build them: psycopg's class for each SQLSTATE, sqlite3's exception with the
# result code the module sets on it, or without one as older drivers raise it.


@pytest.mark.parametrize(
    ("sqlstate", "kind"),
    [
        ("40001", Failure.CONTENTION),
        ("40P01", Failure.CONTENTION),
        ("55P03", Failure.CONTENTION),
        ("53300", Failure.UNREACHABLE),
        ("57P01", Failure.UNREACHABLE),
        ("57P02", Failure.UNREACHABLE),
        ("57P03", Failure.UNREACHABLE),
        ("57P04", Failure.UNREACHABLE),
        ("57P05", Failure.UNREACHABLE),
        ("08000", Failure.UNREACHABLE),
        ("08006", Failure.UNREACHABLE),
        ("57014", Failure.OVERLOADED),
        ("53100", Failure.STORAGE_FULL),
        ("53200", Failure.PERMANENT),
        ("42P01", Failure.PERMANENT),
        ("23505", Failure.PERMANENT),
    ],
)
def test_each_documented_sqlstate_has_its_kind(sqlstate: str, kind: Failure) -> None:
    """psycopg's error for each SQLSTATE named in the module's table is sorted as the table says."""
    error = psycopg.errors.lookup(sqlstate)("from the server")
    assert classify(error) is kind
    assert classify(sa_exc.DBAPIError("SELECT 1", None, error)) is kind


def _sqlite_error(message: str, code: int | None) -> Exception:
    error = sqlite.driver().OperationalError(message)
    if code is not None:
        error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (5, Failure.CONTENTION),  # SQLITE_BUSY
        (5 | 1 << 8, Failure.CONTENTION),  # SQLITE_BUSY_RECOVERY
        (6, Failure.CONTENTION),  # SQLITE_LOCKED
        (6 | 1 << 8, Failure.CONTENTION),  # SQLITE_LOCKED_SHAREDCACHE
        (10, Failure.UNREACHABLE),  # SQLITE_IOERR
        (10 | 1 << 8, Failure.UNREACHABLE),  # SQLITE_IOERR_READ
        (14, Failure.UNREACHABLE),  # SQLITE_CANTOPEN
        (13, Failure.STORAGE_FULL),  # SQLITE_FULL
        (1, Failure.PERMANENT),  # SQLITE_ERROR
        (19 | 8 << 8, Failure.PERMANENT),  # SQLITE_CONSTRAINT_UNIQUE
    ],
)
def test_a_sqlite_result_code_is_read_over_the_message(code: int, kind: Failure) -> None:
    """The result code (extended codes by their low byte) decides, whatever the message says."""
    misleading = "database is locked" if kind is not Failure.CONTENTION else "no such table: t"
    assert classify(_sqlite_error(misleading, code)) is kind


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("database is locked", Failure.CONTENTION),
        ("database table is locked: t", Failure.CONTENTION),
        ("Database is busy", Failure.CONTENTION),
        ("database or disk is full", Failure.STORAGE_FULL),
        ("disk I/O error", Failure.UNREACHABLE),
        ("unable to open database file", Failure.UNREACHABLE),
        ("no such table: t", Failure.PERMANENT),
    ],
)
def test_a_sqlite_error_without_a_code_is_read_by_its_message(message: str, kind: Failure) -> None:
    """A driver that sets no result code is sorted by the message SQLite wrote, in any case."""
    assert classify(_sqlite_error(message, None)) is kind
    assert classify(sa_exc.OperationalError("SELECT 1", None, _sqlite_error(message, None))) is kind


def test_a_dropped_connection_sqlalchemy_noticed_is_unreachable() -> None:
    """An error SQLAlchemy marks as having invalidated the connection is unreachable, whatever it says."""
    error = sa_exc.DBAPIError("SELECT 1", None, RuntimeError("server closed the connection"))
    error.connection_invalidated = True
    assert classify(error) is Failure.UNREACHABLE
    error.connection_invalidated = False
    assert classify(error) is Failure.PERMANENT


def test_a_psycopg_error_without_sqlstate_is_unreachable_only_if_operational() -> None:
    """psycopg's OperationalError with no SQLSTATE is a failed connection; its other errors are permanent."""
    assert classify(psycopg.OperationalError("connection failed")) is Failure.UNREACHABLE
    assert classify(psycopg.InterfaceError("the connection is closed")) is Failure.PERMANENT


def test_a_malformed_sqlstate_is_not_read_as_one() -> None:
    """A sqlstate attribute that is not five characters is ignored: the error is read like any other."""
    error = RuntimeError("database is locked")
    error.sqlstate = "0800"  # type: ignore[attr-defined]
    assert classify(error) is Failure.CONTENTION


def test_the_kinds_are_named_as_stats_report_them() -> None:
    """Each kind's value is the key it is counted under in the retry stats."""
    assert [kind.value for kind in Failure] == [
        "contention",
        "unreachable",
        "overloaded",
        "storage_full",
        "permanent",
    ]
