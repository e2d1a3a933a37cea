"""`Database`: one SQLAlchemy engine built from `DATABASE_URL`, with its liveness check and pool figures.

SQLite goes through `pysqlite3`, which bundles a current SQLite whatever the Python build, and gets the
pragmas a multi-process service needs (WAL, `synchronous=NORMAL`, a busy timeout, foreign keys).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import QueuePool

__all__ = ["Database", "PoolStatus", "safe_url"]

PoolStatus = dict[str, int]

SQLITE_PRAGMAS: dict[str, str | int] = {
    "journal_mode": "WAL",
    "synchronous": "NORMAL",
    "busy_timeout": 5000,
    "foreign_keys": "ON",
    "temp_store": "MEMORY",
    "cache_size": -16000,  # KiB: 16 MiB per connection
}


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, for logs and error messages."""
    return make_url(url).render_as_string(hide_password=True)


def normalize_url(url: str | URL) -> URL:
    """`postgres://` and a bare `postgresql://` mean psycopg 3, the driver lastro installs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_module() -> Any:
    import pysqlite3.dbapi2 as dbapi  # bundles SQLite >= 3.51.3 (the WAL-reset fix)

    return dbapi


class Database:
    """An engine plus what health checks need to know about it."""

    def __init__(self, url: str | URL, *, pool_size: int = 5, max_overflow: int = 10) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.sqlite_path = self._sqlite_path()
        self.engine = self._create_engine(pool_size, max_overflow)

    def _sqlite_path(self) -> Path | None:
        database = self.url.database
        if not self.is_sqlite or not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database)

    def _create_engine(self, pool_size: int, max_overflow: int) -> Engine:
        if not self.is_sqlite:
            return create_engine(
                self.url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True, future=True
            )
        if self.sqlite_path is not None:
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            self.url,
            module=sqlite_module(),
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=max_overflow,
            connect_args={"check_same_thread": False},
        )
        event.listen(engine, "connect", _apply_pragmas)
        return engine

    @property
    def display_url(self) -> str:
        return safe_url(self.url)

    def ping(self) -> None:
        """Raise if the database does not answer a trivial query right now."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        if self.sqlite_path is not None:
            self._open_sqlite_file()

    def _open_sqlite_file(self) -> None:
        # Pooled connections keep the old file open even once it is moved, deleted or made unreadable:
        # only a fresh open of the path tells whether a new worker could still start.
        assert self.sqlite_path is not None
        dbapi = sqlite_module()
        uri = f"file:{self.sqlite_path.resolve()}?mode=rw"
        connection = dbapi.connect(uri, uri=True, timeout=1)
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


def _apply_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for name, value in SQLITE_PRAGMAS.items():
            cursor.execute(f"PRAGMA {name}={value}")
    finally:
        cursor.close()
