"""Database and DatabaseOptions: settings → pool and timeouts, a real PostgreSQL engine, pool, ping."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import JSON, Text, literal, select, text
from sqlalchemy import exc as sa_exc

from lastro import get_settings
from lastro.db import sqlite
from lastro.db.engine import (
    Database,
    DatabaseOptions,
    check_postgres_version,
    normalize_url,
    safe_url,
)
from lastro.db.failures import Failure, classify
from lastro.db.pools import POSTGRES_CONNECTION_BUDGET
from lastro.errors import ConfigurationError
from tests.conftest import POSTGRES_URL

pg = pytest.mark.postgres
POOL_KEYS = {"size", "checked_in", "checked_out", "overflow", "max_overflow"}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def postgres() -> Iterator[Database]:
    database = Database(POSTGRES_URL, DatabaseOptions(statement_timeout=1.5, pool_size=3, max_overflow=2))
    yield database
    database.dispose()


# --- URLs -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_bare_postgres_url_means_psycopg3(scheme: str) -> None:
    """postgres:// and postgresql:// select the psycopg 3 driver lastro installs."""
    assert normalize_url(f"{scheme}://u@h/db").drivername == "postgresql+psycopg"


def test_explicit_driver_is_kept() -> None:
    """A URL that names its driver keeps it."""
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"


def test_safe_url_hides_the_password() -> None:
    """The password never reaches logs or error messages."""
    shown = safe_url("postgresql://app:s3cret@db.internal:5432/orders")
    assert "s3cret" not in shown
    assert "app:***@db.internal" in shown


# --- options from settings ------------------------------------------------------------------------------


def test_options_from_settings_read_every_pool_and_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """DB_POOL_* and the timeouts, set in the environment, land in DatabaseOptions."""
    for name, value in {
        "DB_POOL_SIZE": "7",
        "DB_MAX_OVERFLOW": "3",
        "DB_POOL_TIMEOUT": "2.5",
        "DB_POOL_RECYCLE": "600",
        "DB_POOL_PRE_PING": "false",
        "DB_STATEMENT_TIMEOUT": "1.25",
        "DB_CONNECT_TIMEOUT": "2",
    }.items():
        monkeypatch.setenv(name, value)
    options = DatabaseOptions.from_settings(get_settings(), workers=4)
    assert (options.workers, options.pool_size, options.max_overflow) == (4, 7, 3)
    assert (options.pool_timeout, options.pool_recycle, options.pool_pre_ping) == (2.5, 600.0, False)
    assert (options.statement_timeout, options.connect_timeout) == (1.25, 2.0)
    assert options.postgres_pool() == (7, 3)


def test_options_from_default_settings_leave_pool_sizes_to_the_worker_count() -> None:
    """Without DB_POOL_SIZE / DB_MAX_OVERFLOW the sizes are derived, the other defaults are lastro's."""
    options = DatabaseOptions.from_settings(get_settings(), workers=2)
    assert (options.pool_size, options.max_overflow) == (None, None)
    assert (options.pool_timeout, options.pool_recycle, options.pool_pre_ping) == (5.0, 1800.0, True)
    assert (options.statement_timeout, options.connect_timeout) == (15.0, 5.0)


@pytest.mark.parametrize(
    ("workers", "expected"),
    [(1, (6, 0)), (4, (6, 0)), (8, (6, 0)), (16, (4, 0)), (40, (2, 0))],
)
def test_default_pool_follows_the_worker_count(workers: int, expected: tuple[int, int]) -> None:
    """Each worker gets a share of the connection budget, less one for its probe: at most 6, no overflow."""
    assert DatabaseOptions(workers=workers).postgres_pool() == expected


@pytest.mark.parametrize("workers", range(1, 41))
def test_default_pools_of_all_workers_fit_the_connection_budget(workers: int) -> None:
    """workers x (pool_size + max_overflow) never exceeds the 80-connection budget (up to 40 workers)."""
    size, overflow = DatabaseOptions(workers=workers).postgres_pool()
    assert size >= 1
    assert workers * (size + overflow) <= POSTGRES_CONNECTION_BUDGET


@pytest.mark.parametrize(("workers", "instances"), [(2, 3), (4, 3), (2, 10)])
def test_every_instance_shares_one_server_budget(workers: int, instances: int) -> None:
    """With INSTANCES machines, all their workers' pools together still fit the one server's budget."""
    size, overflow = DatabaseOptions(workers=workers, instances=instances).postgres_pool()
    assert instances * workers * (size + overflow) <= POSTGRES_CONNECTION_BUDGET
    assert (size, overflow) == DatabaseOptions(workers=workers * instances).postgres_pool()


def test_instances_comes_from_the_settings() -> None:
    """DatabaseOptions.from_settings carries INSTANCES."""
    settings = get_settings(INSTANCES=3, REDIS_URL="redis://127.0.0.1:6379/0")
    assert DatabaseOptions.from_settings(settings, workers=2).instances == 3


def test_explicit_pool_sizes_win_over_the_derived_ones() -> None:
    """DB_POOL_SIZE and DB_MAX_OVERFLOW are used as given, whatever the worker count."""
    assert DatabaseOptions(workers=32, pool_size=12, max_overflow=0).postgres_pool() == (12, 0)


@pytest.mark.parametrize(("workers", "size"), [(2, 12), (1, 50), (0, 70), (2, 100)])
def test_a_pool_size_alone_gets_no_overflow(workers: int, size: int) -> None:
    """DB_POOL_SIZE without DB_MAX_OVERFLOW: that many connections and threads, none opened on top."""
    assert DatabaseOptions(workers=workers, pool_size=size).postgres_pool() == (size, 0)


# --- a real PostgreSQL engine ---------------------------------------------------------------------------


@pg
def test_postgres_engine_applies_the_statement_timeout(postgres: Database) -> None:
    """DB_STATEMENT_TIMEOUT reaches the server as the session's statement_timeout."""
    with postgres.engine.connect() as connection:
        assert connection.execute(text("SHOW statement_timeout")).scalar_one() == "1500ms"


@pg
def test_postgres_statement_timeout_cancels_a_long_query() -> None:
    """A statement running past the timeout is cancelled by the server."""
    database = Database(POSTGRES_URL, DatabaseOptions(statement_timeout=0.05))
    started = time.monotonic()
    try:
        with (
            pytest.raises(sa_exc.OperationalError, match="statement timeout"),
            database.engine.connect() as c,
        ):
            c.execute(text("SELECT pg_sleep(5)"))
    finally:
        database.dispose()
    assert time.monotonic() - started < 2


@pg
def test_postgres_zero_statement_timeout_means_none() -> None:
    """DB_STATEMENT_TIMEOUT=0 leaves the server without a statement timeout."""
    database = Database(POSTGRES_URL, DatabaseOptions(statement_timeout=0))
    try:
        with database.engine.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar_one() == "0"
    finally:
        database.dispose()


@pg
def test_postgres_url_options_are_kept_alongside_the_statement_timeout() -> None:
    """`?options=-csearch_path=...` in DATABASE_URL still applies when lastro adds statement_timeout."""
    database = Database(f"{POSTGRES_URL}?options=-csearch_path%3Dlastro_nowhere", DatabaseOptions())
    try:
        with database.engine.connect() as connection:
            assert connection.execute(text("SHOW search_path")).scalar_one() == "lastro_nowhere"
            assert connection.execute(text("SHOW statement_timeout")).scalar_one() == "15s"
    finally:
        database.dispose()


@pg
def test_postgres_pool_is_sized_from_the_options(postgres: Database) -> None:
    """pool_size and max_overflow given in the options are the engine pool's."""
    status = postgres.pool_status()
    assert (status["size"], status["max_overflow"]) == (3, 2)


@pg
def test_pool_status_reports_checked_out_connections(postgres: Database) -> None:
    """pool_status() has the five figures, and counts a connection in use as checked out."""
    with postgres.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        status = postgres.pool_status()
    assert set(status) == POOL_KEYS
    assert status["checked_out"] == 1
    assert postgres.pool_status()["checked_out"] == 0
    assert postgres.pool_status()["checked_in"] == 1


@pg
def test_postgres_server_version_is_what_the_server_reports(postgres: Database) -> None:
    """server_version() is the server's own server_version."""
    with postgres.engine.connect() as connection:
        expected = connection.execute(text("SELECT current_setting('server_version')")).scalar_one()
    assert postgres.server_version() == expected
    assert postgres.server_version()[0].isdigit()


@pg
def test_postgres_ping_succeeds_on_a_live_server(postgres: Database) -> None:
    """ping() returns quietly when the server answers."""
    postgres.ping()


def test_ping_fails_fast_on_an_unreachable_port() -> None:
    """With nothing listening, ping() raises an unreachable error well within a second."""
    database = Database(
        f"postgresql://postgres@127.0.0.1:{_closed_port()}/test", DatabaseOptions(connect_timeout=1)
    )
    started = time.monotonic()
    try:
        with pytest.raises(sa_exc.OperationalError) as raised:
            database.ping()
    finally:
        database.dispose()
    assert time.monotonic() - started < 1
    assert classify(raised.value) is Failure.UNREACHABLE


def test_postgres_version_is_unknown_before_connecting() -> None:
    """Building the engine does not connect: the version is filled in at start-up."""
    database = Database(f"postgresql://postgres@127.0.0.1:{_closed_port()}/test")
    try:
        assert database.version == "unknown"
        assert database.backend == "postgresql"
        assert not database.is_sqlite
    finally:
        database.dispose()


# --- SQLite ---------------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'engine.db'}")
    yield database
    database.dispose()


def test_sqlite_pool_is_two_connections_plus_overflow(sqlite_db: Database) -> None:
    """A SQLite engine keeps 2 connections (reader and writer) and 8 of overflow."""
    status = sqlite_db.pool_status()
    assert set(status) == POOL_KEYS
    assert (status["size"], status["max_overflow"]) == (2, 8)


def test_sqlite_server_version_is_the_driver_library(sqlite_db: Database) -> None:
    """For SQLite, server_version() and version are the driver's SQLite library version."""
    assert sqlite_db.server_version() == sqlite_db.version == sqlite.driver().sqlite_version


def test_sqlite_ping_fails_once_the_file_moved_even_with_pooled_connections(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """A pooled connection still reads the moved file; ping() opens the path afresh and fails."""
    assert sqlite_db.sqlite_path is not None
    with sqlite_db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    sqlite_db.ping()
    shutil.move(sqlite_db.sqlite_path, tmp_path / "moved.db")
    with sqlite_db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))  # the pooled connection does not notice
    with pytest.raises(sqlite.driver().OperationalError, match="unable to open database file") as raised:
        sqlite_db.ping()
    assert classify(raised.value) is Failure.UNREACHABLE


def test_sqlite_display_url_is_the_url() -> None:
    """display_url shows the SQLite URL as given."""
    database = Database("sqlite:///relative/app.db")
    try:
        assert database.display_url == "sqlite:///relative/app.db"
        assert database.sqlite_path == Path("relative/app.db")
    finally:
        database.dispose()  # created under the test's own working directory


def test_in_memory_sqlite_has_no_file() -> None:
    """sqlite:// (in memory) has no path, and works."""
    database = Database("sqlite://")
    try:
        assert database.sqlite_path is None
        database.ping()
    finally:
        database.dispose()


def test_a_worker_database_never_creates_a_missing_sqlite_file(tmp_path: Path) -> None:
    """With create_sqlite_file off (workers of `lastro serve`) a missing file is an error, not a new one."""
    path = tmp_path / "gone.db"
    database = Database(f"sqlite:///{path}", DatabaseOptions(create_sqlite_file=False))
    try:
        with pytest.raises(Exception, match="unable to open database file"):
            database.ping()
    finally:
        database.dispose()
    assert not path.exists()


def test_postgres_before_13_is_refused_naming_the_url_and_the_need() -> None:
    """A PostgreSQL 12 server is refused: it cannot tell a lost COMMIT's outcome."""
    with pytest.raises(
        ConfigurationError, match=r"DATABASE_URL=postgresql://db/x is version 12\.17; .*13 or newer"
    ):
        check_postgres_version("12.17", 120017, "postgresql://db/x")


def test_postgres_13_is_accepted() -> None:
    """PostgreSQL 13.0, the first with pg_xact_status(), is accepted."""
    check_postgres_version("13.0", 130000, "postgresql://db/x")


def test_an_old_postgres_refusal_is_one_exact_message() -> None:
    """The refusal names the URL, the version, the minimum and why it is needed, in one sentence."""
    with pytest.raises(ConfigurationError) as refused:
        check_postgres_version("12.17", 120017, "postgresql://db/x")
    assert str(refused.value) == (
        "the PostgreSQL server at DATABASE_URL=postgresql://db/x is version 12.17; lastro needs 13 or newer, "
        "where pg_xact_status() tells whether a write whose COMMIT reply was lost was applied"
    )


def test_options_from_settings_carry_the_create_flag_and_the_pragmas() -> None:
    """from_settings passes create= through and the settings' SQLite pragmas."""
    settings = get_settings(SQLITE_PRAGMAS={"cache_size": -64000})
    options = DatabaseOptions.from_settings(settings, 2, create=False)
    assert (options.create_sqlite_file, options.sqlite_pragmas) == (False, sqlite.pragmas_for(settings))
    assert options.sqlite_pragmas["cache_size"] == -64000
    assert DatabaseOptions.from_settings(settings, 2).create_sqlite_file is True


@pg
@pytest.mark.parametrize(("connect_timeout", "interval"), [(7.0, "3"), (0.2, "1")])
def test_postgres_connections_notice_a_dead_peer(connect_timeout: float, interval: str) -> None:
    """Connections carry TCP keepalives and a user timeout scaled to the connect timeout (whole seconds)."""
    database = Database(POSTGRES_URL, DatabaseOptions(connect_timeout=connect_timeout))
    seconds = str(max(1, int(connect_timeout + 0.999)))
    try:
        with database.engine.connect() as connection:
            parameters = connection.connection.driver_connection.info.get_parameters()  # type: ignore[union-attr]
    finally:
        database.dispose()
    assert {key: parameters[key] for key in CONNECTION_KEYS} == {
        "connect_timeout": seconds,
        "keepalives": "1",
        "keepalives_idle": seconds,
        "keepalives_interval": interval,
        "keepalives_count": "3",
        "tcp_user_timeout": str(int(seconds) * 2000),
    }


CONNECTION_KEYS = [
    "connect_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
]


@pg
def test_postgres_url_options_given_twice_are_all_kept() -> None:
    """Two `options` in the URL are both applied, with the statement timeout after them."""
    url = f"{POSTGRES_URL}?options=-csearch_path%3Dpublic&options=-cwork_mem%3D8MB"
    database = Database(url, DatabaseOptions(statement_timeout=2))
    try:
        with database.engine.connect() as connection:
            settings = connection.execute(
                text("SELECT current_setting('work_mem'), current_setting('statement_timeout')")
            ).one()
    finally:
        database.dispose()
    assert tuple(settings) == ("8MB", "2s")


@pg
def test_a_pooled_postgres_connection_the_server_dropped_is_replaced_unseen() -> None:
    """With pre-ping on, a pooled connection the server terminated is replaced at checkout (pinged at
    every checkout here; by default only after a second idle, see tests/db/test_ping.py)."""
    database = Database(POSTGRES_URL, DatabaseOptions(ping_after_idle=0))
    try:
        with database.engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with database.engine.connect() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        database.dispose()


@pg
def test_a_postgres_pool_waits_pool_timeout_for_a_connection() -> None:
    """The pool gives a checkout DB_POOL_TIMEOUT seconds before the pool-timeout error."""
    database = Database(POSTGRES_URL, DatabaseOptions(pool_timeout=0.05, pool_size=1, max_overflow=0))
    try:
        with database.engine.connect(), pytest.raises(sa_exc.TimeoutError):
            database.engine.connect()
    finally:
        database.dispose()


@pg
def test_the_postgres_probe_tells_its_socket(postgres: Database) -> None:
    """probe() reaches the server and tells the caller the socket it waits on."""
    sockets: list[int] = []
    postgres.probe(on_socket=sockets.append)
    postgres.probe()
    assert len(sockets) == 1
    assert sockets[0] >= 0


@pg
def test_a_connection_outside_the_pool_is_in_autocommit(postgres: Database) -> None:
    """connect_outside_pool opens a connection of its own, in autocommit, on the same database."""
    connection = postgres.connect_outside_pool(timeout=0.3)
    try:
        assert connection.autocommit is True
        assert connection.info.get_parameters()["connect_timeout"] == "1"
        assert connection.execute("SELECT current_database()").fetchone() == ("test",)
    finally:
        connection.close()
    assert postgres.pool_status()["checked_out"] == 0


@pg
def test_a_pooled_postgres_connection_reads_outside_a_transaction_and_writes_in_one(
    postgres: Database,
) -> None:
    """Outside a transaction the server refuses a pooled connection's write; a transaction is READ WRITE."""
    with postgres.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(sa_exc.InternalError, match="read-only transaction"):
            connection.execute(text("CREATE TEMPORARY TABLE refused (id int)"))
    with postgres.engine.begin() as connection:
        connection.execute(text("CREATE TEMPORARY TABLE written (id int) ON COMMIT DROP"))
        assert connection.execute(text("SHOW transaction_read_only")).scalar_one() == "off"


@pg
def test_postgres_connections_of_their_own_are_not_read_only(postgres: Database) -> None:
    """The probe's, a LISTEN's (`driver_connect_args`) and one outside the pool keep the server's default."""
    with psycopg.connect(**postgres.driver_connect_args(), autocommit=True) as listener:
        assert listener.execute("SHOW default_transaction_read_only").fetchone() == ("off",)
    outside = postgres.connect_outside_pool(timeout=1.0)
    try:
        assert outside.execute("SHOW default_transaction_read_only").fetchone() == ("off",)
    finally:
        outside.close()
    with postgres.probe_engine.connect() as connection:
        assert connection.execute(text("SHOW default_transaction_read_only")).scalar_one() == "off"


@pg
def test_postgres_json_columns_are_written_compactly(postgres: Database) -> None:
    """JSON values are serialized by lastro's encoder: compact, without spaces."""
    with postgres.engine.connect() as connection:
        stored = connection.execute(select(literal({"a": [1, 2]}, JSON).cast(Text))).scalar_one()
    assert stored == '{"a":[1,2]}'


def test_sqlite_json_columns_are_written_compactly(sqlite_db: Database) -> None:
    """On SQLite too, JSON values are serialized compactly."""
    with sqlite_db.engine.connect() as connection:
        stored = connection.execute(select(literal({"a": [1, 2]}, JSON).cast(Text))).scalar_one()
    assert stored == '{"a":[1,2]}'


def test_in_memory_sqlite_json_columns_are_written_compactly() -> None:
    """An in-memory SQLite database serializes JSON the same way."""
    database = Database("sqlite://")
    try:
        with database.engine.connect() as connection:
            stored = connection.execute(select(literal({"a": [1, 2]}, JSON).cast(Text))).scalar_one()
    finally:
        database.dispose()
    assert stored == '{"a":[1,2]}'


@pytest.mark.parametrize("url", ["sqlite://", "FILE"])
def test_a_sqlite_connection_serves_any_thread(url: str, tmp_path: Path) -> None:
    """A pooled SQLite connection used on one thread can be used on the next (the writer's and the loop's)."""
    database = Database(f"sqlite:///{tmp_path / 'threads.db'}" if url == "FILE" else url)
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(database.ping).result() is None
            assert database.pool_status()["size"] == 2
        database.ping()
    finally:
        database.dispose()


def test_a_sqlite_file_is_created_in_missing_directories(tmp_path: Path) -> None:
    """A new SQLite file is created with the directories above it, and the data lands in that file."""
    path = tmp_path / "a" / "b" / "app.db"
    database = Database(f"sqlite:///{path}")
    try:
        with database.engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (n INTEGER)"))
    finally:
        database.dispose()
    raw = sqlite.driver().connect(str(path))
    try:
        assert raw.execute("SELECT name FROM sqlite_schema").fetchall() == [("t",)]
    finally:
        raw.close()
    assert sorted(p.name for p in path.parent.iterdir()) == ["app.db"]


@pytest.mark.parametrize(
    "url", ["sqlite:///:memory:", "sqlite:///file:shared?mode=memory&uri=true", "sqlite://"]
)
def test_sqlite_databases_without_a_file_have_no_path(url: str) -> None:
    """In-memory databases, and those named by a `file:` URI, have no path to watch."""
    database = Database(url)
    try:
        assert database.sqlite_path is None
    finally:
        database.dispose()


def test_the_sqlite_probe_fails_once_the_file_is_gone(sqlite_db: Database, tmp_path: Path) -> None:
    """probe() opens the file afresh and fails once it was moved away, without recreating it."""
    assert sqlite_db.sqlite_path is not None
    sqlite_db.probe()
    shutil.move(sqlite_db.sqlite_path, tmp_path / "moved.db")
    with pytest.raises(sqlite.driver().OperationalError, match="unable to open database file"):
        sqlite_db.probe()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moved.db"]


def test_the_sqlite_in_memory_probe_answers() -> None:
    """probe() on an in-memory database asks it a trivial query."""
    database = Database("sqlite://")
    try:
        database.probe()
    finally:
        database.dispose()


def test_pool_overflow_is_never_reported_negative(sqlite_db: Database) -> None:
    """An idle pool reports zero overflow connections in use."""
    assert sqlite_db.pool_status()["overflow"] == 0


@pg
@pytest.mark.parametrize(
    ("query", "expected"), [("", "lastro"), ("?application_name=orders-api", "orders-api")]
)
def test_postgres_sessions_are_named_lastro_unless_the_url_names_them(query: str, expected: str) -> None:
    """pg_stat_activity shows lastro's sessions as `lastro`; an application_name in the URL wins."""
    database = Database(POSTGRES_URL + query)
    try:
        with database.engine.connect() as connection:
            name = connection.execute(text("SELECT current_setting('application_name')")).scalar_one()
    finally:
        database.dispose()
    assert name == expected
