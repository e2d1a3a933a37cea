"""What a database error means for the request that met it, told by exception class, SQLSTATE and code.

- *Contention* (retry the whole unit of work): SQLite busy/locked, PostgreSQL `40001`
  serialization_failure, `40P01` deadlock_detected and `55P03` lock_not_available.
- *Unreachable* (retry, and tell the circuit breaker): the connection could not be made or was dropped,
  the SQLite file cannot be opened, PostgreSQL is shutting down or out of connections (`08xxx`, `57P0x`,
  `53300`), psycopg's `OperationalError` family (connect failures and `ConnectionTimeout` carry no
  SQLSTATE).
- *Overloaded* (503 at once, not retried, not held against the breaker): no pooled connection came free
  within `DB_POOL_TIMEOUT`, or a statement hit `DB_STATEMENT_TIMEOUT` (`57014`). The database answers;
  this worker asked too much of it.
- *Storage full* (507, not retried): SQLite's `SQLITE_FULL`, PostgreSQL's `53100` disk_full.
- Anything else (a constraint violation, a bug in a query, a table a missing migration should have made) is
  *permanent*: retrying cannot fix it.

Classes are matched with `isinstance`, never by name, and psycopg is looked at only if it is loaded.
"""

from __future__ import annotations

import enum
import sys

from sqlalchemy import exc as sa_exc

__all__ = ["Failure", "classify"]

CONTENTION_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
UNREACHABLE_SQLSTATES = frozenset({"53300", "57P01", "57P02", "57P03", "57P04", "57P05"})
UNREACHABLE_SQLSTATE_CLASSES = ("08",)
OVERLOADED_SQLSTATES = frozenset({"57014"})  # query_canceled: statement_timeout
STORAGE_FULL_SQLSTATES = frozenset({"53100"})
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 5, 6, 10, 13, 14
SQLITE_CONTENTION_WORDS = ("database is locked", "database table is locked", "database is busy")
SQLITE_UNREACHABLE_WORDS = ("unable to open database", "disk i/o error")
SQLITE_FULL_WORDS = ("database or disk is full",)


class Failure(enum.Enum):
    CONTENTION = "contention"
    UNREACHABLE = "unreachable"
    OVERLOADED = "overloaded"
    STORAGE_FULL = "storage_full"
    PERMANENT = "permanent"

    @property
    def retryable(self) -> bool:
        return self in (Failure.CONTENTION, Failure.UNREACHABLE)


def classify(error: BaseException) -> Failure:
    """The kind of a database error raised by SQLAlchemy or a DB-API driver."""
    if isinstance(error, sa_exc.TimeoutError):
        return Failure.OVERLOADED  # the pool had no free connection within its timeout
    original = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        return _classify_sqlstate(sqlstate)
    code = getattr(original, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _classify_sqlite_code(code)
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return Failure.UNREACHABLE
    if _is_psycopg_operational(original):
        return Failure.UNREACHABLE  # no SQLSTATE: the connection could not be made, or timed out
    return _classify_sqlite_message(original)


def _classify_sqlstate(sqlstate: str) -> Failure:
    if sqlstate in CONTENTION_SQLSTATES:
        return Failure.CONTENTION
    if sqlstate in UNREACHABLE_SQLSTATES or sqlstate.startswith(UNREACHABLE_SQLSTATE_CLASSES):
        return Failure.UNREACHABLE
    if sqlstate in OVERLOADED_SQLSTATES:
        return Failure.OVERLOADED
    if sqlstate in STORAGE_FULL_SQLSTATES:
        return Failure.STORAGE_FULL
    return Failure.PERMANENT


def _classify_sqlite_code(code: int) -> Failure:
    primary = code & 0xFF  # extended result codes keep the primary code in the low byte
    if primary in (SQLITE_BUSY, SQLITE_LOCKED):
        return Failure.CONTENTION
    if primary == SQLITE_FULL:
        return Failure.STORAGE_FULL
    if primary in (SQLITE_IOERR, SQLITE_CANTOPEN):
        return Failure.UNREACHABLE
    return Failure.PERMANENT


def _classify_sqlite_message(error: BaseException | None) -> Failure:
    # A driver older than Python 3.11's sqlite3 carries no error code: only its message tells.
    message = str(error).lower()
    if any(words in message for words in SQLITE_CONTENTION_WORDS):
        return Failure.CONTENTION
    if any(words in message for words in SQLITE_FULL_WORDS):
        return Failure.STORAGE_FULL
    if any(words in message for words in SQLITE_UNREACHABLE_WORDS):
        return Failure.UNREACHABLE
    return Failure.PERMANENT


def _is_psycopg_operational(error: BaseException | None) -> bool:
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, psycopg.OperationalError)
