"""Which database errors are worth retrying, and which mean the database is unreachable.

- *Contention* (retry the whole unit of work): SQLite busy/locked, PostgreSQL `40001`
  serialization_failure and `40P01` deadlock_detected.
- *Unreachable* (retry, and count towards opening the circuit breaker): the connection could not be made
  or was dropped, the SQLite file cannot be opened, PostgreSQL is shutting down (`57P0x`, `08xxx`).
- Anything else (a constraint violation, a bug in a query, a table a missing migration should have made) is
  not retried: retrying cannot fix it.
"""

from __future__ import annotations

import enum

from sqlalchemy import exc as sa_exc

__all__ = ["Failure", "classify"]

CONTENTION_SQLSTATES = frozenset({"40001", "40P01"})
UNREACHABLE_SQLSTATE_PREFIXES = ("08", "57P")
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_CANTOPEN = 5, 6, 10, 14
SQLITE_CONTENTION_WORDS = ("database is locked", "database table is locked", "database is busy")
SQLITE_UNREACHABLE_WORDS = ("unable to open database", "disk i/o error")


class Failure(enum.Enum):
    CONTENTION = "contention"
    UNREACHABLE = "unreachable"
    PERMANENT = "permanent"

    @property
    def retryable(self) -> bool:
        return self is not Failure.PERMANENT


def classify(error: BaseException) -> Failure:
    """The kind of a database error raised by SQLAlchemy or a DB-API driver."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return Failure.UNREACHABLE
    original = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate in CONTENTION_SQLSTATES:
            return Failure.CONTENTION
        if sqlstate.startswith(UNREACHABLE_SQLSTATE_PREFIXES):
            return Failure.UNREACHABLE
        return Failure.PERMANENT
    return _classify_without_sqlstate(original)


def _classify_without_sqlstate(error: BaseException | None) -> Failure:
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        primary = code & 0xFF  # extended result codes keep the primary code in the low byte
        if primary in (SQLITE_BUSY, SQLITE_LOCKED):
            return Failure.CONTENTION
        if primary in (SQLITE_IOERR, SQLITE_CANTOPEN):
            return Failure.UNREACHABLE
    message = str(error).lower()
    if any(words in message for words in SQLITE_CONTENTION_WORDS):
        return Failure.CONTENTION
    if any(words in message for words in SQLITE_UNREACHABLE_WORDS):
        return Failure.UNREACHABLE
    if type(error).__name__ == "OperationalError" and type(error).__module__.startswith("psycopg"):
        return Failure.UNREACHABLE  # psycopg raises it without a sqlstate when it cannot connect
    return Failure.PERMANENT
