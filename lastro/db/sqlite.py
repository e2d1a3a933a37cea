"""SQLite as a multi-process service database: the driver, the version guard, pragmas and transactions.

- **Driver.** `pysqlite3` bundles a current SQLite whatever the Python build; the standard library's
  `sqlite3` is the fallback. SQLite before 3.51.3 can corrupt a WAL database when connections in different
  processes write or checkpoint at the same moment (the "WAL-reset bug" on sqlite.org), which is exactly a
  multi-worker service, so several workers on such a version are refused unless explicitly allowed.
- **Pragmas.** WAL, a busy timeout, foreign keys, temp tables in memory and a sized page cache.
  `mmap_size` stays off: SQLite documents that memory mapping is unsafe when several processes write.
  `PRAGMA optimize` runs when a connection closes. `journal_size_limit` is `SQLITE_WAL_MAX_BYTES`, so the
  WAL file shrinks back whenever SQLite restarts it (`lastro.db.checkpoint` handles the readers that stop
  it from restarting).
- **Durability** (`SQLITE_SYNCHRONOUS`). In WAL mode, `NORMAL` does not sync the WAL at each commit, only
  at checkpoints: a committed transaction survives a crash of the process, but an OS crash or a power loss
  may roll back the last transactions committed before it; the database is never corrupted. `FULL` syncs
  the WAL at every commit, so a commit also survives an OS crash or a power loss, at the cost measured in
  benchmarks/RESULTS.md ("Durability"). `SQLITE_PRAGMAS` overrides both.
- **Transactions.** The driver's own implicit BEGIN is disabled; lastro emits `BEGIN` for read units and
  `BEGIN IMMEDIATE` for write units, so a write takes the lock at its start and a deferred read-to-write
  upgrade can never fail with SQLITE_BUSY halfway through.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

from sqlalchemy import Connection, Engine, event

from lastro.errors import ConfigurationError
from lastro.observability.logging import get_logger
from lastro.settings import Settings

__all__ = [
    "DEFAULT_PRAGMAS",
    "SAFE_VERSION",
    "BeginMode",
    "check_pragmas",
    "check_version",
    "configure_engine",
    "driver",
    "driver_connection",
    "effective_pragmas",
    "is_affected",
    "pragmas_for",
    "version",
]

SAFE_VERSION = (3, 51, 3)
DEFAULT_PRAGMAS: dict[str, str | int] = {
    "journal_mode": "WAL",
    "synchronous": "NORMAL",
    "busy_timeout": 5000,  # ms: a write unit waits this long for the lock held by another worker
    "foreign_keys": "ON",
    "temp_store": "MEMORY",
    # KiB per connection: SQLite's own default. The OS page cache holds the file anyway; a larger cache made
    # workers larger for no throughput (benchmarks/RESULTS.md, "What moved the numbers").
    "cache_size": -2000,
}
BEGIN_OPTION = "lastro_sqlite_begin"  # pragma: no mutate (a key's spelling; any other works alike)
BeginMode = str  # "DEFERRED" for read units, "IMMEDIATE" for write units

logger = get_logger("lastro.db")
_BEGIN = {"DEFERRED": "BEGIN DEFERRED", "IMMEDIATE": "BEGIN IMMEDIATE"}
_PRAGMA_NAME = re.compile(r"^[a-z_]+$")
_PRAGMA_VALUE = re.compile(r"^-?[A-Za-z0-9_]+$")


def driver() -> ModuleType:
    """The DB-API module lastro uses for SQLite: `pysqlite3` when installed, else the standard library."""
    try:
        import pysqlite3.dbapi2 as dbapi
    except ImportError:  # pragma: no cover - pysqlite3 is a dependency; a platform without a wheel falls back
        import sqlite3 as dbapi
    module: ModuleType = dbapi
    return module


def version() -> str:
    return str(driver().sqlite_version)


def is_affected(version_info: tuple[int, ...]) -> bool:
    """True for a SQLite that has the WAL-reset bug."""
    return tuple(version_info[:3]) < SAFE_VERSION


def check_version(workers: int, *, allow_unsafe: bool, version_info: tuple[int, ...] | None = None) -> None:
    """Refuse several workers on a SQLite with the WAL-reset bug, unless `SQLITE_ALLOW_UNSAFE_VERSION`."""
    found = version_info if version_info is not None else tuple(driver().sqlite_version_info)
    if workers <= 1 or allow_unsafe or not is_affected(found):
        return
    shown = ".".join(str(part) for part in found)
    raise ConfigurationError(
        f"SQLite {shown} can corrupt a WAL database when {workers} workers write at once (fixed in 3.51.3): "
        "install pysqlite3>=0.6.1, or set WORKERS=1, or accept the risk with SQLITE_ALLOW_UNSAFE_VERSION=true"
    )


def effective_pragmas(pragmas: dict[str, str | int]) -> dict[str, str | int]:
    """lastro's defaults with `SQLITE_PRAGMAS` over them: what every connection gets."""
    return {**DEFAULT_PRAGMAS, **pragmas}


def pragmas_for(settings: Settings) -> dict[str, str | int]:
    """The pragmas the settings ask for over lastro's defaults: `SQLITE_SYNCHRONOUS`, the WAL size limit,
    and `SQLITE_PRAGMAS` over both."""
    pragmas: dict[str, str | int] = {"synchronous": settings.SQLITE_SYNCHRONOUS}
    if settings.SQLITE_WAL_MAX_BYTES:
        pragmas["journal_size_limit"] = settings.SQLITE_WAL_MAX_BYTES
    return {**pragmas, **settings.SQLITE_PRAGMAS}


def driver_connection(connection: Connection) -> Any:
    """The DB-API connection under a SQLAlchemy one, for statements that must skip SQLAlchemy: there a
    statement outside a transaction would begin one, and its execution path costs more than SQLite's."""
    driver = connection.connection.driver_connection
    assert driver is not None
    return driver


def check_pragmas(pragmas: dict[str, str | int]) -> dict[str, str | int]:
    """The effective pragmas; raises `ConfigurationError` for a name or value that is not a plain word, since
    each becomes a `PRAGMA name=value` statement. `lastro serve` checks them before starting any worker."""
    settings = effective_pragmas(pragmas)
    for name, value in settings.items():
        if not _PRAGMA_NAME.match(name) or not _PRAGMA_VALUE.match(str(value)):
            raise ConfigurationError(
                f'SQLITE_PRAGMAS must map pragma names to plain values, e.g. {{"cache_size": -64000}} '
                f"(got {name!r}: {value!r})"
            )
    return settings


def configure_engine(engine: Engine, pragmas: dict[str, str | int]) -> None:
    """Install the pragmas, explicit BEGIN and `PRAGMA optimize` on an engine's connections."""
    settings = check_pragmas(pragmas)
    if int(settings.get("mmap_size", 0) or 0) > 0:  # pragma: no mutate (decides a log line only)
        logger.warning("SQLITE_PRAGMAS sets mmap_size: SQLite documents it as unsafe with several writers")

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # lastro emits BEGIN itself, see `on_begin`
        cursor = dbapi_connection.cursor()
        try:
            for name, value in settings.items():
                cursor.execute(f"PRAGMA {name}={value}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        driver_connection(connection).execute(_BEGIN[mode])

    @event.listens_for(engine, "close")
    def on_close(dbapi_connection: Any, _record: Any) -> None:
        try:
            dbapi_connection.execute("PRAGMA optimize")
        except Exception:  # the file may be gone; closing must not fail for it
            logger.debug("PRAGMA optimize skipped on close", exc_info=True)
