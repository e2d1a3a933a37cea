"""SQLite as lastro runs it: driver, version guard, pragmas, BEGIN IMMEDIATE, no silent re-creation."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc

from lastro import ConfigurationError, get_settings
from lastro.db import sqlite
from lastro.db.engine import Database, DatabaseOptions
from lastro.db.transactions import Transactions

pytestmark = pytest.mark.anyio


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'app.db'}")
    yield database
    database.dispose()


def _pragma(database: Database, name: str) -> object:
    with database.engine.connect() as connection:
        return connection.exec_driver_sql(f"PRAGMA {name}").scalar()


# --- driver and version guard ---------------------------------------------------------------------------


def test_driver_is_pysqlite3() -> None:
    """lastro uses pysqlite3, whatever SQLite the Python build links."""
    assert sqlite.driver().__name__ == "pysqlite3.dbapi2"


def test_driver_sqlite_has_the_wal_reset_fix() -> None:
    """The bundled SQLite is 3.51.3 or later, so it is not affected."""
    assert tuple(sqlite.driver().sqlite_version_info) >= sqlite.SAFE_VERSION
    assert not sqlite.is_affected(tuple(sqlite.driver().sqlite_version_info))


def test_version_is_the_driver_library_version() -> None:
    """version() reports the library the driver runs, not the stdlib's."""
    assert sqlite.version() == sqlite.driver().sqlite_version


def test_engine_dialect_sees_the_driver_version(database: Database) -> None:
    """SQLAlchemy's dialect knows the version actually running (it gates features on it)."""
    with database.engine.connect():
        pass
    assert database.engine.dialect.server_version_info == tuple(sqlite.driver().sqlite_version_info)


@pytest.mark.parametrize(
    ("found", "affected"),
    [((3, 40, 1), True), ((3, 51, 2), True), ((3, 51, 3), False), ((3, 52, 0), False), ((4, 0, 0), False)],
)
def test_is_affected_below_3_51_3(found: tuple[int, ...], affected: bool) -> None:
    """Versions before 3.51.3 have the WAL-reset bug."""
    assert sqlite.is_affected(found) is affected


def test_check_version_refuses_several_workers_on_an_affected_version() -> None:
    """Two workers on SQLite 3.51.2 raise ConfigurationError naming the version and the override."""
    with pytest.raises(ConfigurationError, match="SQLITE_ALLOW_UNSAFE_VERSION") as raised:
        sqlite.check_version(2, allow_unsafe=False, version_info=(3, 51, 2))
    assert "3.51.2" in str(raised.value)
    assert "WORKERS=1" in str(raised.value)


def test_check_version_refuses_the_stdlib_sqlite_of_this_python() -> None:
    """The standard library's SQLite, when older than 3.51.3, is refused for several workers."""
    if not sqlite.is_affected(sqlite3.sqlite_version_info):
        pytest.skip(f"this Python links SQLite {sqlite3.sqlite_version}, which is not affected")
    with pytest.raises(ConfigurationError, match="SQLITE_ALLOW_UNSAFE_VERSION"):
        sqlite.check_version(4, allow_unsafe=False, version_info=sqlite3.sqlite_version_info)


def test_check_version_allows_one_worker_on_an_affected_version() -> None:
    """One worker is one process: the bug cannot happen, so it is allowed."""
    sqlite.check_version(1, allow_unsafe=False, version_info=(3, 40, 1))


def test_check_version_allows_several_workers_when_overridden() -> None:
    """SQLITE_ALLOW_UNSAFE_VERSION=true accepts the risk."""
    sqlite.check_version(8, allow_unsafe=True, version_info=(3, 40, 1))


def test_check_version_allows_several_workers_on_the_installed_driver() -> None:
    """With the installed driver (no version given) many workers are fine."""
    sqlite.check_version(16, allow_unsafe=False)


# --- pragmas --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("journal_mode", "wal"),
        ("synchronous", 1),  # NORMAL
        ("foreign_keys", 1),
        ("busy_timeout", 5000),
        ("temp_store", 2),  # MEMORY
        ("cache_size", -2000),
    ],
)
def test_default_pragma_is_applied_on_a_real_connection(
    database: Database, name: str, expected: object
) -> None:
    """Each default pragma is in force on the engine's connections."""
    assert _pragma(database, name) == expected


def test_mmap_is_off_by_default(database: Database) -> None:
    """mmap_size stays 0: memory mapping is unsafe with several writing processes."""
    assert _pragma(database, "mmap_size") == 0


def test_foreign_keys_are_enforced(database: Database) -> None:
    """foreign_keys=ON is not decorative: a dangling reference is refused."""
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        connection.execute(text("CREATE TABLE child (parent_id INTEGER REFERENCES parent(id))"))
    with (
        pytest.raises(sa_exc.IntegrityError, match="FOREIGN KEY constraint failed"),
        database.engine.begin() as connection,
    ):
        connection.execute(text("INSERT INTO child VALUES (42)"))


def test_settings_pragmas_override_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLITE_PRAGMAS from the environment overrides lastro's values and keeps the others."""
    monkeypatch.setenv("SQLITE_PRAGMAS", '{"cache_size": -64000, "busy_timeout": 250, "synchronous": "FULL"}')
    options = DatabaseOptions.from_settings(get_settings(), workers=1)
    database = Database(f"sqlite:///{tmp_path / 'tuned.db'}", options)
    try:
        assert _pragma(database, "cache_size") == -64000
        assert _pragma(database, "busy_timeout") == 250
        assert _pragma(database, "synchronous") == 2
        assert _pragma(database, "journal_mode") == "wal"
    finally:
        database.dispose()


def _database_from(tmp_path: Path, **settings: object) -> Database:
    options = DatabaseOptions.from_settings(get_settings(**settings), workers=1)
    return Database(f"sqlite:///{tmp_path / 'settings.db'}", options)


@pytest.mark.parametrize(("level", "expected"), [("NORMAL", 1), ("FULL", 2)])
def test_sqlite_synchronous_sets_the_pragma_on_every_connection(
    tmp_path: Path, level: str, expected: int
) -> None:
    """SQLITE_SYNCHRONOUS=NORMAL gives synchronous=1 and FULL gives 2, on each connection of the pool."""
    database = _database_from(tmp_path, SQLITE_SYNCHRONOUS=level)
    try:
        with database.engine.connect() as first, database.engine.connect() as second:
            for connection in (first, second):
                assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == expected
    finally:
        database.dispose()


def test_sqlite_pragmas_win_over_sqlite_synchronous(tmp_path: Path) -> None:
    """A synchronous in SQLITE_PRAGMAS overrides SQLITE_SYNCHRONOUS."""
    database = _database_from(tmp_path, SQLITE_SYNCHRONOUS="FULL", SQLITE_PRAGMAS={"synchronous": "NORMAL"})
    try:
        assert _pragma(database, "synchronous") == 1
    finally:
        database.dispose()


@pytest.mark.parametrize(("limit", "expected"), [(1 << 20, 1 << 20), (0, -1)])
def test_the_wal_size_limit_is_the_journal_size_limit(tmp_path: Path, limit: int, expected: int) -> None:
    """SQLITE_WAL_MAX_BYTES is the WAL's journal_size_limit; 0 leaves SQLite's default (no limit)."""
    database = _database_from(tmp_path, SQLITE_WAL_MAX_BYTES=limit)
    try:
        assert _pragma(database, "journal_size_limit") == expected
    finally:
        database.dispose()


def test_mmap_can_be_enabled_explicitly(tmp_path: Path) -> None:
    """An operator who accepts the risk can still set mmap_size."""
    database = Database(
        f"sqlite:///{tmp_path / 'mmap.db'}", DatabaseOptions(sqlite_pragmas={"mmap_size": 1 << 20})
    )
    try:
        assert _pragma(database, "mmap_size") == 1 << 20
    finally:
        database.dispose()


@pytest.mark.parametrize(
    "pragmas",
    [
        {"journal_mode=DELETE; DROP TABLE orders; --": "WAL"},
        {"Cache-Size": 100},
        {"cache_size": "1; DROP TABLE orders"},
        {"journal_mode": "WAL)"},
        {"busy_timeout": ""},
    ],
)
def test_invalid_pragma_is_refused(tmp_path: Path, pragmas: dict[str, str | int]) -> None:
    """A pragma name or value that is not a plain word or number raises ConfigurationError."""
    with pytest.raises(ConfigurationError, match="SQLITE_PRAGMAS"):
        Database(f"sqlite:///{tmp_path / 'bad.db'}", DatabaseOptions(sqlite_pragmas=pragmas))


# --- transactions ---------------------------------------------------------------------------------------


def _try_begin_immediate(path: Path) -> str:
    """What a second writer (busy timeout 0) gets when it tries to take the write lock now."""
    other = sqlite.driver().connect(str(path), isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return "acquired"
    except sqlite.driver().OperationalError as error:
        return str(error)
    finally:
        other.close()


async def test_write_unit_takes_the_write_lock_at_begin(database: Database) -> None:
    """A write unit runs in BEGIN IMMEDIATE: while it is open, no other connection can take the lock."""
    assert database.sqlite_path is not None
    path = database.sqlite_path
    transactions = Transactions(database)

    def unit(connection: Connection) -> str:
        return _try_begin_immediate(path)  # the unit has executed nothing yet

    try:
        assert await transactions.write(unit) == "database is locked"
    finally:
        transactions.close()


async def test_read_unit_does_not_take_the_write_lock(database: Database) -> None:
    """A read unit is a deferred transaction: a writer elsewhere proceeds while it is open."""
    assert database.sqlite_path is not None
    path = database.sqlite_path
    transactions = Transactions(database)

    def unit(connection: Connection) -> str:
        connection.execute(text("SELECT count(*) FROM sqlite_schema")).scalar_one()
        return _try_begin_immediate(path)

    try:
        assert await transactions.read(unit) == "acquired"
    finally:
        transactions.close()


def test_lock_is_released_after_the_write_unit(database: Database) -> None:
    """Once the write transaction ends, another writer can take the lock."""
    assert database.sqlite_path is not None
    with database.engine.connect() as connection:
        connection.execution_options(**{sqlite.BEGIN_OPTION: "IMMEDIATE"})
        with connection.begin():
            assert _try_begin_immediate(database.sqlite_path) == "database is locked"
    assert _try_begin_immediate(database.sqlite_path) == "acquired"


# --- the file -------------------------------------------------------------------------------------------


def test_missing_file_is_created_on_first_open(tmp_path: Path) -> None:
    """A database that never existed is created (with its directory) when the engine is built."""
    path = tmp_path / "var" / "new.db"
    database = Database(f"sqlite:///{path}")
    try:
        database.ping()
    finally:
        database.dispose()
    assert path.is_file()


def test_vanished_file_is_not_recreated(database: Database) -> None:
    """Once created, a file that disappears is an error on connect, never a new empty database."""
    assert database.sqlite_path is not None
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    database.dispose()
    for leftover in database.sqlite_path.parent.glob(database.sqlite_path.name + "*"):
        leftover.unlink()
    with pytest.raises(sa_exc.OperationalError, match="unable to open database file"):
        database.ping()
    assert not database.sqlite_path.exists()


def test_the_default_pragmas_are_lastros() -> None:
    """Without SQLITE_PRAGMAS every connection gets WAL, NORMAL sync, a 5 s busy timeout, foreign keys,
    temp tables in memory and SQLite's own cache size."""
    assert sqlite.effective_pragmas({}) == {
        "journal_mode": "WAL",
        "synchronous": "NORMAL",
        "busy_timeout": 5000,
        "foreign_keys": "ON",
        "temp_store": "MEMORY",
        "cache_size": -2000,
    }


def test_several_workers_on_an_unsafe_sqlite_are_refused_with_the_ways_out() -> None:
    """The refusal names the version, the worker count, the fix and each way out, in one message."""
    with pytest.raises(ConfigurationError) as refused:
        sqlite.check_version(3, allow_unsafe=False, version_info=(3, 45, 1))
    assert str(refused.value) == (
        "SQLite 3.45.1 can corrupt a WAL database when 3 workers write at once (fixed in 3.51.3): "
        "install pysqlite3>=0.6.1, or set WORKERS=1, or accept the risk with SQLITE_ALLOW_UNSAFE_VERSION=true"
    )
