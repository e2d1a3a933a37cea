"""`PostgresUnits`: PostgreSQL units of work on a thread pool, each waited for no longer than its deadline.

One hop to a thread per unit (not per statement), on one thread fewer than the connection pool has
connections; a thread keeps its connection for the unit queued behind its own (`lastro.db.held`). The
coroutine waits until the unit's deadline and then abandons the attempt (`lastro.db.attempts`): a network
that stops answering costs a request its deadline, never the length of the outage.

A read unit runs its statements outside a transaction (autocommit): a `BEGIN` and a `COMMIT` are two round
trips of the three a one-statement read took. Each statement sees what was committed when it began, as it
would in a `READ COMMITTED` transaction, PostgreSQL's default; and the pool's connections are read-only
outside a transaction (`lastro.db.engine`), so the server refuses a write and re-running a read is always
safe. A write unit sends its own `BEGIN READ WRITE` with the read of its transaction's id, in one round
trip (`lastro.db.outcome.begin_write`). If COMMIT then fails on a connection error, the database is asked
what became of it (`lastro.db.outcome`): the unit's result is returned if it was applied, the error
re-raised (and the unit re-run) if it certainly was not, and `CommitOutcomeUnknown` raised if nobody could
tell before the deadline.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection

from lastro.db.attempts import Abandoned, BoundedAttempt, TimedOut, wait_for_attempt
from lastro.db.engine import Database
from lastro.db.failures import Failure, classify
from lastro.db.held import HeldConnections
from lastro.db.outcome import PendingCommit, begin_write, resolve
from lastro.db.threads import UnitThreads
from lastro.errors import CommitOutcomeUnknown, ServiceUnavailable, one_line
from lastro.observability.logging import get_logger

__all__ = ["CommitOutcomes", "PostgresUnits"]

T = TypeVar("T")
Mode = Literal["read", "write"]

logger = get_logger("lastro.db")


class CommitOutcomes:
    """How failed COMMITs ended: `committed` or `aborted` (asked and told), `unknown` (never told)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()  # counted from the unit threads and the event loop

    def add(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


class PostgresUnits:
    def __init__(self, database: Database, outcomes: CommitOutcomes, deadline: float) -> None:
        self.database = database
        self.outcomes = outcomes
        self.deadline = deadline
        capacity = sum(database.options.postgres_pool())
        self._held = HeldConnections(database.engine, capacity)
        # One thread fewer than the pool has connections (but one at least): the spare serves check-outs
        # from outside the units at once, while the threads keep theirs (`lastro.db.held`).
        self.threads = UnitThreads(max(1, capacity - 1), "lastro-db", on_exit=self._held.release)

    async def run(self, work: Callable[[Connection], T], mode: Mode, bounded: BoundedAttempt) -> T:
        """Run `work` in a thread; give up on it at `bounded`'s deadline."""
        future = self.threads.submit(self._transaction, work, mode, bounded)
        try:
            return await wait_for_attempt(future, bounded)
        except TimedOut as timed_out:
            if timed_out.never_committed:
                logger.warning("database unit abandoned at its deadline", mode=mode, deadline_s=self.deadline)
                raise ServiceUnavailable(f"the database did not answer within {self.deadline:g} s") from None
            raise CommitOutcomeUnknown(
                f"the database did not confirm the COMMIT within {self.deadline:g} s; "
                "read the resource before writing again"
            ) from None

    def _transaction(self, work: Callable[[Connection], T], mode: Mode, bounded: BoundedAttempt) -> T:
        if bounded.abandoned:
            raise Abandoned  # it waited for a thread past its deadline: nobody waits for it any more
        ended = False
        try:
            connection = self._held.take()
            bounded.connected = True
            driver = connection.connection.driver_connection
            bounded.attach(driver.pgconn.socket)  # type: ignore[union-attr]
            try:
                result = self._commit_unit(connection, driver, work, mode, bounded)
            except Abandoned:
                connection.invalidate()
                raise
            finally:
                bounded.detach()
            ended = True
            return result
        finally:
            # Kept for the next unit only after one that ended well, and only if one is queued.
            self._held.done(keep=ended and self.threads.has_queued())

    def _commit_unit(
        self,
        connection: Connection,
        driver: Any,
        work: Callable[[Connection], T],
        mode: Mode,
        bounded: BoundedAttempt,
    ) -> T:
        transaction = connection.begin()
        try:
            pending = begin_write(driver) if mode == "write" else None
            result = work(connection)
            if not bounded.begin_commit():
                raise Abandoned  # the coroutine gave up: roll back rather than commit behind its back
        except BaseException:
            transaction.rollback()
            raise
        try:
            transaction.commit()
        except Exception as error:
            return self._after_failed_commit(error, result, pending, bounded)
        return result

    def _after_failed_commit(
        self, error: Exception, result: T, pending: PendingCommit | None, bounded: BoundedAttempt
    ) -> T:
        """A COMMIT on a connection that died may have been applied: ask, and answer only what is known."""
        if pending is None or bounded.abandoned or classify(error) is not Failure.UNREACHABLE:
            raise error  # the server answered (not applied), or a read, or nobody waits
        logger.warning("commit failed, asking whether it was applied", xid=pending.xid, error=one_line(error))
        outcome = resolve(self.database.connect_outside_pool, pending, bounded)
        if outcome is not None:
            self.outcomes.add(outcome)
            logger.warning("commit outcome resolved", xid=pending.xid, outcome=outcome)
        if outcome == "committed":
            return result
        if outcome == "aborted" or bounded.abandoned:
            raise error  # not applied: the unit may run again; or the coroutine already answered
        raise CommitOutcomeUnknown(
            f"the COMMIT's reply was lost and the database could not tell within {self.deadline:g} s "
            "whether it was applied; read the resource before writing again"
        ) from None
