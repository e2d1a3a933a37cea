"""What became of a write whose COMMIT failed: asked of the database, never guessed.

A COMMIT that fails because the connection died may have been applied or not: the server may have
committed and the reply been lost. Re-running the unit then would apply it twice (an order created twice,
a PATCH answered 412 against its own change); answering 503 would call an applied write failed.

PostgreSQL: a write unit begins its transaction and reads the transaction's id in one round trip
(`begin_write`: `BEGIN READ WRITE; SELECT pg_current_xact_id()`, one simple query), and the driver knows its
backend's pid without one. If COMMIT then fails with a connection error, a new connection, outside the
pool, asks `pg_xact_status(xid)`:

- `committed`: the unit's result (computed before COMMIT) is the answer;
- `aborted`: it certainly was not applied, and may run again;
- `in progress`: the old backend has not noticed its client is gone: it is terminated
  (`pg_terminate_backend`), which either finishes or aborts the commit, and the question is asked again.

When nothing answers before the unit's deadline, the outcome is unknown and the caller is told so
(`CommitOutcomeUnknown`), never a retry.

SQLite: a failed COMMIT left the transaction open (it is rolled back: not applied) or rolled it back,
except an I/O error, after which the pages may or may not be in the WAL: unknown.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from lastro.db.attempts import BoundedAttempt
from lastro.db.failures import SQLITE_IOERR
from lastro.errors import one_line
from lastro.observability.logging import get_logger

__all__ = ["BEGIN_WRITE", "Outcome", "PendingCommit", "begin_write", "resolve", "sqlite_commit_in_doubt"]

Outcome = Literal["committed", "aborted"]  # pragma: no mutate (a type, for the type checker)
_POLL = 0.05  # seconds between questions while the old backend still holds the transaction open
_TERMINATE_WAIT_MS = 1000

logger = get_logger("lastro.db")


@dataclass(frozen=True)
class PendingCommit:
    """The transaction a write unit is about to commit: its id, and the server process running it."""

    xid: str
    backend_pid: int


# Two statements in one simple query: the id costs no round trip of its own. It is assigned here, before
# the unit writes, so a unit that ends up writing nothing commits an empty transaction with an id.
BEGIN_WRITE = "BEGIN READ WRITE; SELECT pg_current_xact_id()::text"


def begin_write(driver_connection: Any) -> PendingCommit:
    """Begin a read-write transaction on a psycopg connection in autocommit (so none is open) and return
    its id; the caller commits or rolls it back."""
    cursor = driver_connection.execute(BEGIN_WRITE)
    cursor.nextset()  # past BEGIN's empty result, to the SELECT's
    (xid,) = cursor.fetchone()
    return PendingCommit(xid, int(driver_connection.info.backend_pid))


def resolve(connect: Any, pending: PendingCommit, attempt: BoundedAttempt) -> Outcome | None:
    """Ask a new connection what became of `pending`, until the attempt's deadline; None if unknown.

    `connect(timeout)` opens a driver connection in autocommit that no pool hands out. Its socket is
    attached to `attempt`, so a coroutine that gives up also wakes this thread.
    """
    while not attempt.abandoned and attempt.remaining() > 0:
        try:
            outcome = _ask(connect, pending, attempt)
        except Exception as error:
            logger.warning("commit outcome: no answer yet", xid=pending.xid, error=one_line(error))
            outcome = None
        if outcome is not None:
            return outcome
        time.sleep(min(_POLL, attempt.remaining()))
    return None


def _ask(connect: Any, pending: PendingCommit, attempt: BoundedAttempt) -> Outcome | None:
    connection = connect(attempt.remaining())
    try:
        attempt.attach(connection.pgconn.socket)
        while not attempt.abandoned and attempt.remaining() > 0:
            status = connection.execute("SELECT pg_xact_status(%s::xid8)", [pending.xid]).fetchone()[0]
            if status in ("committed", "aborted"):
                return status  # type: ignore[no-any-return]
            if status is None:
                return None  # too old to be known: cannot happen within a deadline of seconds
            # In progress: the backend still runs the transaction. Ending it makes the commit finish or
            # abort; its pid cannot have been reused, since the transaction (and so the process) is alive.
            wait = min(_TERMINATE_WAIT_MS, max(1, math.floor(attempt.remaining() * 1000)))
            connection.execute("SELECT pg_terminate_backend(%s, %s)", [pending.backend_pid, wait])
        return None
    finally:
        attempt.detach()
        connection.close()


def sqlite_commit_in_doubt(error: BaseException, in_transaction: bool) -> bool:
    """Whether a failed SQLite COMMIT may have been applied: an I/O error that ended the transaction."""
    original = getattr(error, "orig", None) or error
    code = getattr(original, "sqlite_errorcode", None)
    if isinstance(code, int):
        io_error = code & 0xFF == SQLITE_IOERR
    else:
        io_error = "disk i/o error" in str(original).lower()
    return io_error and not in_transaction
