"""`Database`: one SQLAlchemy engine built from `DATABASE_URL`, its liveness check and its pool figures.

SQLite is configured by `lastro.db.sqlite`. PostgreSQL goes through psycopg 3 with a bounded pool whose size
follows the worker count (every worker has its own pool, and the server's `max_connections`, 100 by default,
is shared by all of them), a statement timeout, a connect timeout and TCP keepalives, so a dead peer on a
real network is noticed. A pooled connection idle for a second or more is pinged before use
(`lastro.db.ping`); one handed back just now goes out without that round trip. A pooled connection is
read-only outside a transaction and begins every transaction `READ WRITE`: read units run as bare
statements, one round trip each, that the server still keeps from writing (`lastro.db.postgres_units`).
The health probe has a one-connection pool of its own (`probe_engine`): it never queues behind requests for
a connection, and a busy pool never looks like an outage. `connect_outside_pool` opens a connection no
pool hands out, to ask about a lost COMMIT.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import QueuePool

from lastro.db import sqlite
from lastro.db.ping import IdlePing
from lastro.db.pools import postgres_pool
from lastro.encoding import dumps_json_text, loads_json
from lastro.errors import ConfigurationError
from lastro.settings import Settings, is_sqlite_url

__all__ = [
    "MIN_POSTGRES_VERSION",
    "Database",
    "DatabaseOptions",
    "PoolStatus",
    "check_postgres_version",
    "normalize_url",
    "safe_url",
]

PoolStatus = dict[str, int]
APPLICATION_NAME = "lastro"
# JSON columns, both ways, with orjson: decoding them was a sixth of the cost of a page of 50 orders.
_JSON_COLUMNS: dict[str, Any] = {"json_serializer": dumps_json_text, "json_deserializer": loads_json}


# A pooled connection's statements outside a transaction are read-only: a read unit runs that way, in one
# round trip and still refused any write. Every transaction on the pool begins READ WRITE instead.
READ_ONLY_BY_DEFAULT = "-c default_transaction_read_only=on"


def _begin_read_write(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.read_only = False  # psycopg then begins each transaction with `BEGIN READ WRITE`


# pg_current_xact_id_if_assigned() and pg_xact_status() tell a lost COMMIT's outcome (lastro.db.outcome).
MIN_POSTGRES_VERSION = 130000


def check_postgres_version(version: str, version_num: int, url: str) -> None:
    """Refuse a PostgreSQL server too old to tell what became of a COMMIT whose reply was lost."""
    if version_num < MIN_POSTGRES_VERSION:
        raise ConfigurationError(
            f"the PostgreSQL server at DATABASE_URL={url} is version {version}; lastro needs 13 or newer, "
            "where pg_xact_status() tells whether a write whose COMMIT reply was lost was applied"
        )


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, for logs and error messages."""
    return make_url(url).render_as_string(hide_password=True)


def normalize_url(url: str | URL) -> URL:
    """`postgres://` and a bare `postgresql://` mean psycopg 3, the driver lastro installs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


@dataclass(frozen=True)
class DatabaseOptions:
    """How the engine is built; `from_settings` derives it from the settings and the worker count."""

    workers: int = 1
    instances: int = 1  # INSTANCES: machines whose workers share one PostgreSQL server's connections
    pool_size: int | None = None
    max_overflow: int | None = None
    pool_timeout: float = 5.0
    pool_recycle: float = 1800.0
    pool_pre_ping: bool = True
    # With pre-ping on, only a connection idle this long is pinged before use (`lastro.db.ping`).
    ping_after_idle: float = 1.0
    statement_timeout: float = 15.0
    connect_timeout: float = 5.0
    sqlite_pragmas: dict[str, str | int] = field(default_factory=dict)
    # Whether a missing SQLite file may be created. Workers of `lastro serve` never do: the supervisor
    # created it before starting them, so a file missing later is an outage, not a new database.
    create_sqlite_file: bool = True
    sqlite_write_lock: str = "auto"  # SQLITE_WRITE_LOCK: the lock file's backend (lastro.db.file_lock)

    @classmethod
    def from_settings(cls, settings: Settings, workers: int, *, create: bool = True) -> DatabaseOptions:
        return cls(
            create_sqlite_file=create,
            workers=workers,
            instances=settings.INSTANCES,
            pool_size=settings.DB_POOL_SIZE,
            max_overflow=settings.DB_MAX_OVERFLOW,
            pool_timeout=settings.DB_POOL_TIMEOUT,
            pool_recycle=settings.DB_POOL_RECYCLE,
            pool_pre_ping=settings.DB_POOL_PRE_PING,
            statement_timeout=settings.DB_STATEMENT_TIMEOUT,
            connect_timeout=settings.DB_CONNECT_TIMEOUT,
            sqlite_pragmas=sqlite.pragmas_for(settings),
            sqlite_write_lock=settings.SQLITE_WRITE_LOCK,
        )

    def postgres_pool(self) -> tuple[int, int]:
        """(pool_size, max_overflow) of each worker: the settings, or its share (`lastro.db.pools`)."""
        return postgres_pool(self.workers, self.instances, self.pool_size, self.max_overflow)


class Database:
    """An engine plus what health checks and units of work need to know about it."""

    def __init__(self, url: str | URL, options: DatabaseOptions | None = None) -> None:
        self.url = normalize_url(url)
        self.options = options or DatabaseOptions()
        self.is_sqlite = is_sqlite_url(self.url)
        self.sqlite_path = self._sqlite_path()
        self.idle_ping: IdlePing | None = None  # PostgreSQL with DB_POOL_PRE_PING
        self._connect_args: dict[str, object] = {} if self.is_sqlite else self._postgres_connect_args()
        self.engine = self._sqlite_engine() if self.is_sqlite else self._postgres_engine()
        self._probe_engine: Engine | None = None
        self.version = sqlite.version() if self.is_sqlite else "unknown"  # the server's, once connected

    def _sqlite_path(self) -> Path | None:
        database = self.url.database
        if not self.is_sqlite or not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database)

    def _sqlite_engine(self) -> Engine:
        # Reads run on the event loop and writes on one writer thread per worker: two connections suffice,
        # the overflow covers health checks and migrations.
        pool_options: dict[str, Any] = {
            "poolclass": QueuePool,
            "pool_size": self.options.pool_size or 2,
            "max_overflow": self.options.max_overflow if self.options.max_overflow is not None else 8,
            "pool_timeout": self.options.pool_timeout,
        }
        if self.sqlite_path is None:
            engine = create_engine(
                self.url,
                module=sqlite.driver(),
                connect_args={"check_same_thread": False},
                **pool_options,
                **_JSON_COLUMNS,
            )
        else:
            # `module` too: SQLAlchemy wraps errors and reads the SQLite version from the dialect's module.
            engine = create_engine(
                "sqlite://",
                module=sqlite.driver(),
                creator=self._sqlite_file_connector(),
                **pool_options,
                **_JSON_COLUMNS,
            )
        sqlite.configure_engine(engine, self.options.sqlite_pragmas)
        return engine

    def _sqlite_file_connector(self) -> Callable[[], Any]:
        """Connections that open the file only if it exists: once the database is created, a file that
        vanishes (moved, deleted) is an outage, never silently replaced by a new empty database."""
        assert self.sqlite_path is not None
        path = self.sqlite_path.resolve()
        dbapi = sqlite.driver()
        if self.options.create_sqlite_file and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            dbapi.connect(str(path)).close()
        uri = f"file:{quote(str(path))}?mode=rw"

        def connect() -> Any:
            return dbapi.connect(uri, uri=True, check_same_thread=False)

        return connect

    def _postgres_connect_args(self) -> dict[str, object]:
        connect = max(1, math.ceil(self.options.connect_timeout))
        connect_args: dict[str, object] = {
            "connect_timeout": connect,
            # A peer that vanished (host down, cable cut) is noticed in about `2 * connect` seconds, and
            # data the peer never acknowledges fails the connection after as long.
            "keepalives": 1,
            "keepalives_idle": connect,
            "keepalives_interval": max(1, math.ceil(connect / 3)),
            "keepalives_count": 3,
            "tcp_user_timeout": connect * 2000,
        }
        if "application_name" not in self.url.query:
            # Named in pg_stat_activity: an operator, and `lastro restore`'s refusal, tell its sessions apart.
            connect_args["application_name"] = APPLICATION_NAME
        if self.options.statement_timeout:
            connect_args["options"] = self._server_options()
        return connect_args

    def _server_options(self, *more: str) -> str:
        """The URL's own `options` (e.g. `-csearch_path=...`), which connect_args would replace, the
        statement timeout, and `more`."""
        given = self.url.query.get("options")
        options = [" ".join(given) if isinstance(given, tuple) else given] if given else []
        if self.options.statement_timeout:
            options.append(f"-c statement_timeout={round(self.options.statement_timeout * 1000)}")
        return " ".join([*options, *more])

    def _postgres_engine(self) -> Engine:
        size, overflow = self.options.postgres_pool()
        pooled = {**self._connect_args, "options": self._server_options(READ_ONLY_BY_DEFAULT)}
        engine = create_engine(
            self.url,
            pool_size=size,
            max_overflow=overflow,
            pool_timeout=self.options.pool_timeout,
            pool_recycle=self.options.pool_recycle,
            pool_pre_ping=False,  # `IdlePing` instead: no round trip for a connection just handed back
            connect_args=pooled,
            **_JSON_COLUMNS,
        )
        event.listen(engine, "connect", _begin_read_write)
        if self.options.pool_pre_ping:
            self.idle_ping = IdlePing(self.options.ping_after_idle)
            self.idle_ping.install(engine)
        return engine

    @property
    def probe_engine(self) -> Engine:
        """PostgreSQL: a pool of one connection for the health probe alone (no pre-ping: it is the ping)."""
        if self._probe_engine is None:
            self._probe_engine = create_engine(
                self.url,
                pool_size=1,
                max_overflow=0,
                pool_timeout=self.options.connect_timeout,
                pool_recycle=self.options.pool_recycle,
                pool_pre_ping=False,
                connect_args=self._connect_args,
            )
        return self._probe_engine

    def connect_outside_pool(self, timeout: float) -> Any:
        """PostgreSQL: a new driver connection in autocommit that no pool hands out; the caller closes it."""
        cargs, cparams = self.engine.dialect.create_connect_args(self.url)
        cparams = {**cparams, **self._connect_args, "connect_timeout": max(1, math.ceil(timeout))}
        connection = self.engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
        connection.autocommit = True
        return connection

    def driver_connect_args(self) -> dict[str, Any]:
        """PostgreSQL: what `psycopg.connect` takes for a connection of one's own (a `LISTEN`, say), with the
        pool's connect timeout, keepalives and statement timeout."""
        _, cparams = self.engine.dialect.create_connect_args(self.url)
        return {**cparams, **self._connect_args}

    @property
    def display_url(self) -> str:
        return safe_url(self.url)

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    def server_version(self) -> str:
        """SQLite's library version, or what the PostgreSQL server reports; refuses PostgreSQL before 13."""
        if self.is_sqlite:
            return sqlite.version()
        with self.engine.connect() as connection:
            version, number = connection.execute(
                text("SELECT current_setting('server_version'), current_setting('server_version_num')::int")
            ).one()
        check_postgres_version(str(version), int(number), self.display_url)
        return str(version)

    def probe(self, on_socket: Callable[[int], None] | None = None) -> None:
        """Raise if the database cannot be reached now, on a connection no request uses.

        PostgreSQL: `SELECT 1` on the probe's own connection; `on_socket` is told its socket, so a caller
        that gives up can wake the thread. SQLite: the file is opened afresh.
        """
        if self.sqlite_path is not None:
            self._open_sqlite_file()
            return
        if self.is_sqlite:
            self.ping()  # in memory: nothing else to open
            return
        with self.probe_engine.connect() as connection:
            if on_socket is not None:
                on_socket(connection.connection.driver_connection.pgconn.socket)  # type: ignore[union-attr]
            connection.exec_driver_sql("SELECT 1")

    def ping(self) -> None:
        """Raise if the database does not answer a trivial query right now."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        if self.sqlite_path is not None:
            self._open_sqlite_file()

    def _open_sqlite_file(self) -> None:
        # Pooled connections keep the old file open even once it is moved, deleted or made unreadable:
        # only a fresh open of the path tells whether the data is still where every worker looks for it.
        assert self.sqlite_path is not None
        uri = f"file:{quote(str(self.sqlite_path.resolve()))}?mode=rw"
        connection = sqlite.driver().connect(uri, uri=True, timeout=1)
        try:
            connection.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        finally:
            connection.close()

    def pool_status(self) -> PoolStatus:
        pool = self.engine.pool
        if not isinstance(pool, QueuePool):
            return {}
        return {
            "size": pool.size(),
            "checked_in": pool.checkedin(),
            "checked_out": pool.checkedout(),
            "overflow": max(pool.overflow(), 0),
            "max_overflow": pool._max_overflow,  # no public accessor in SQLAlchemy 2.x
        }

    def dispose(self) -> None:
        self.engine.dispose()
        if self._probe_engine is not None:
            self._probe_engine.dispose()
