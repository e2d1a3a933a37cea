"""`Transactions`: run units of work, read-only or read-write, with retry and the circuit breaker.

A unit of work is a plain function `work(connection, *args, **kwargs) -> result` that runs inside one
transaction: `await transactions.read(repo.get_order, order_id)`, typed like the call it stands for. It is
committed when it returns and rolled back when it raises; a transient failure re-runs the whole function.

Where it runs was chosen by measurement (benchmarks/RESULTS.md, "Database access"):

- SQLite, read: on the event loop, on a connection the thread keeps (`ReadConnections`). A WAL reader never
  waits for a lock, and a read by primary key costs less than the hop to a thread would; the thread keeps
  its connection because a pool checkout and checkin per read cost a sizeable share of the read itself
  (benchmarks/RESULTS.md, "What moved the numbers").
- SQLite, write: in `BEGIN IMMEDIATE`, on the event loop when no other writer holds the lock, else on one
  writer thread per worker (`lastro.db.writer`), several queued units to a transaction. The workers take
  turns through a file lock (`lastro.db.write_lock`) instead of the busy handler's sleeps, and the wait
  for the lock never blocks the event loop.
- PostgreSQL: on a thread pool as large as the connection pool, one hop per unit of work (not one per
  statement), waited for no longer than the unit's deadline (the retry policy's `StopAfterDelay`,
  DB_RETRY_DEADLINE); a read's statements run without a transaction, each read-only; a write whose COMMIT
  failed is re-run only if it certainly was not applied (`lastro.db.postgres_units`).

A unit whose established connection died is re-run at once on a new one, without counting against the
breaker: only failing to connect (or to get an answer before the deadline) does.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

from lastro.db.attempts import Abandoned, BoundedAttempt, TimedOut, wait_for_attempt
from lastro.db.breaker import CircuitBreaker
from lastro.db.engine import Database
from lastro.db.failures import Failure, classify
from lastro.db.on_commit import Staged
from lastro.db.postgres_units import CommitOutcomes, PostgresUnits
from lastro.db.retry import Attempt, RetryPolicy, Stop, StopAfterDelay, StopAny
from lastro.db.threads import UnitThreads
from lastro.db.writer import SQLiteWriter
from lastro.errors import CommitOutcomeUnknown, LastroError, ServiceUnavailable, StorageFull, one_line
from lastro.observability.logging import get_logger

__all__ = ["Mode", "ReadConnections", "Transactions", "UnitSpans", "Work", "WorkOf", "bind"]

T = TypeVar("T")
P = ParamSpec("P")
Work = Callable[[Connection], T]
# A unit of work that takes arguments after the connection: `transactions.read(repo.get_order, order_id)`.
WorkOf = Callable[Concatenate[Connection, P], T]
Mode = Literal["read", "write"]
# The span around one unit of work, given the database backend, the mode and the unit's function (with
# TRACING on: `lastro.observability.tracing.Tracing.unit`).
UnitSpans = Callable[[str, Mode, Callable[..., Any]], AbstractContextManager[object]]

logger = get_logger("lastro.db")


class ReadConnections:
    """One connection per thread for the reads run inline, kept between units of work.

    Units run inline one after another on their thread (the event loop's), never at the same time, so one
    connection serves them all. A unit that fails with a database error gives its connection up: the next
    read opens a new one, as a pool would after an outage.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._local = threading.local()
        self._open: list[Connection] = []
        self._lock = threading.Lock()

    def run(self, work: Work[T]) -> T:
        connection = self._get()
        try:
            with connection.begin():
                return work(connection)
        except sa_exc.DBAPIError:
            self._discard(connection)
            raise

    def close(self) -> None:
        with self._lock:
            connections, self._open = self._open, []
        for connection in connections:
            connection.close()

    def _get(self) -> Connection:
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            connection = self.database.engine.connect()
            self._local.connection = connection
            with self._lock:
                self._open.append(connection)
        return connection

    def _discard(self, connection: Connection) -> None:
        self._local.connection = None
        with self._lock:
            if connection in self._open:
                self._open.remove(connection)
        connection.invalidate()
        connection.close()


class Transactions:
    def __init__(
        self,
        database: Database,
        *,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        inline_reads: bool | None = None,
        unit_spans: UnitSpans | None = None,
    ) -> None:
        self.database = database
        self.unit_spans = unit_spans  # None with tracing off: a unit then costs one comparison more
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self.inline_reads = database.is_sqlite if inline_reads is None else inline_reads
        self.deadline = _deadline_of(self.retry.stop)
        self.retries: Counter[str] = Counter()
        self.gave_up = 0
        self.reconnects = 0  # units re-run at once because their established connection was dropped
        self.commit_outcomes = CommitOutcomes()
        self._probe_threads = UnitThreads(1, "lastro-db-probe")
        self._sqlite_writer = SQLiteWriter(database) if database.is_sqlite else None
        self._inline_reads = ReadConnections(database)
        self._postgres: PostgresUnits | None = None
        if database.is_sqlite:
            # Reads run inline unless `inline_reads` is off; the threads start only if they are needed.
            self._threads = UnitThreads(4, "lastro-db-read")
        else:
            self._postgres = PostgresUnits(database, self.commit_outcomes, self.deadline)
            self._threads = self._postgres.threads

    async def read(self, work: WorkOf[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `work(connection, *args, **kwargs)` read-only: in a transaction on SQLite, as bare statements
        on PostgreSQL (`lastro.db.postgres_units`)."""
        if self.unit_spans is None:
            return await self._run(bind(work, *args, **kwargs), "read")
        return await self._traced(bind(work, *args, **kwargs), "read", work)

    async def write(self, work: WorkOf[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `work(connection, *args, **kwargs)` read-write (in `BEGIN IMMEDIATE` on SQLite), then the
        `on_commit` callbacks it registered."""
        staged = Staged(bind(work, *args, **kwargs))
        if self.unit_spans is None:
            result = await self._run(staged, "write")
        else:
            result = await self._traced(staged, "write", work)
        if staged.callbacks:
            await staged.run_callbacks()
        return result

    async def _traced(self, work: Work[T], mode: Mode, named: Callable[..., Any]) -> T:
        """`_run` inside the unit's span, named after `named`: the function before `bind`."""
        assert self.unit_spans is not None
        with self.unit_spans(self.database.backend, mode, named):
            return await self._run(work, mode)

    async def _run(self, work: Work[T], mode: Mode) -> T:
        deadline = time.monotonic() + self.deadline

        async def attempt() -> T:
            self.breaker.before_call()
            reconnected = False
            while True:
                # Only PostgreSQL units run bounded in a thread: SQLite's need no per-attempt state.
                bounded = BoundedAttempt(deadline) if self._postgres is not None else None
                try:
                    result = await self._execute(work, mode, bounded)
                except Exception as error:
                    if not reconnected and _dropped(error, bounded):
                        reconnected = True
                        self.reconnects += 1
                        logger.warning("database connection dropped, running again", error=one_line(error))
                        continue
                    self._record(error, bounded)
                    raise
                self.breaker.record_success()
                return result

        try:
            return await self.retry.call(attempt, retryable=_retryable, on_retry=self._on_retry)
        except CommitOutcomeUnknown as error:
            self.commit_outcomes.add("unknown")
            logger.error("commit outcome unknown", mode=mode, error=error.detail)
            raise
        except LastroError:
            raise
        except Exception as error:
            kind = classify(error)
            if kind is Failure.STORAGE_FULL:
                raise StorageFull(f"the database's disk is full: {one_line(error)}") from None
            if kind is Failure.OVERLOADED:
                raise ServiceUnavailable(f"the database is overloaded: {one_line(error)}") from None
            if not kind.retryable:
                raise
            self.gave_up += 1
            logger.error("database unit of work gave up", mode=mode, error=one_line(error))
            raise ServiceUnavailable(
                f"the database did not complete the request: {one_line(error)}"
            ) from None

    async def _execute(self, work: Work[T], mode: Mode, bounded: BoundedAttempt | None) -> T:
        if mode == "read" and self.inline_reads:
            return self._inline_reads.run(work)
        if mode == "write" and self._sqlite_writer is not None:
            return await self._sqlite_writer.submit(work)
        if self._postgres is not None and bounded is not None:
            return await self._postgres.run(work, mode, bounded)
        # Left: a SQLite read with inline reads off, on a thread, in the default BEGIN DEFERRED.
        return await self._threads.submit(self._read, work)

    async def probe(self, within: float) -> None:
        """Reach the database within `within` seconds on the probe's own connection and thread, or raise.

        Never a pooled request connection nor anyio's thread limiter: a probe neither waits behind the
        service's own work nor mistakes a busy pool for an outage.
        """
        bounded = BoundedAttempt(time.monotonic() + within)
        future = self._probe_threads.submit(self._probe, bounded)
        try:
            await wait_for_attempt(future, bounded)
        except TimedOut:
            raise TimeoutError(f"the database did not answer within {within:g} s") from None

    def _probe(self, bounded: BoundedAttempt) -> None:
        try:
            for last in (False, True):
                if bounded.abandoned:
                    raise Abandoned
                try:
                    self.database.probe(on_socket=bounded.attach)
                    return
                except sa_exc.DBAPIError as error:
                    # A dropped connection is replaced and asked again at once; a new one that fails tells.
                    if last or not error.connection_invalidated:
                        raise
        finally:
            bounded.detach()

    def _read(self, work: Work[T]) -> T:
        with self.database.engine.connect() as connection, connection.begin():
            return work(connection)

    def _record(self, error: BaseException, bounded: BoundedAttempt | None) -> None:
        unreachable = classify(error) is Failure.UNREACHABLE or isinstance(error, ServiceUnavailable)
        if unreachable and not _connected(bounded):
            self.breaker.record_failure(error)  # no connection could be made or checked out
        elif unreachable or isinstance(error, CommitOutcomeUnknown):
            self.breaker.release_trial()  # connected, then lost: says nothing about reaching the database
        else:
            self.breaker.record_success()  # the database answered, even if with an error

    def _on_retry(self, attempt: Attempt, delay: float) -> None:
        kind = classify(attempt.error).value
        self.retries[kind] += 1
        logger.warning(
            "database retry",
            attempt=attempt.number,
            kind=kind,
            delay_ms=round(delay * 1000, 1),
            error=one_line(attempt.error),
        )

    def stats(self) -> dict[str, Any]:
        stats = {
            "retries": dict(self.retries),
            "gave_up": self.gave_up,
            "reconnects": self.reconnects,
            "commit_outcomes": self.commit_outcomes.snapshot(),
            "breaker": self.breaker.snapshot(),
        }
        if self._sqlite_writer is not None:
            stats["writes"] = {
                "units": self._sqlite_writer.units,
                "inline": self._sqlite_writer.inline,
                "transactions": self._sqlite_writer.transactions,
                "queued": self._sqlite_writer.queued,
            }
        return stats

    def close(self) -> None:
        self._inline_reads.close()
        if self._sqlite_writer is not None:
            self._sqlite_writer.close()
        self._threads.shutdown(wait=True)
        self._probe_threads.shutdown(wait=False)


def bind(work: WorkOf[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Work[T]:
    """`work` with its arguments after the connection bound; `work` itself when there are none."""
    if not args and not kwargs:
        return work  # the common `run(lambda connection: ...)`: no wrapper on the hot path

    def bound(connection: Connection) -> T:
        return work(connection, *args, **kwargs)

    return bound


def _retryable(error: BaseException) -> bool:
    return not isinstance(error, LastroError) and classify(error).retryable


def _connected(bounded: BoundedAttempt | None) -> bool:
    """Whether the attempt had a connection (so a failure means it was lost, not that none could be made)."""
    return bounded is not None and bounded.connected


def _dropped(error: BaseException, bounded: BoundedAttempt | None) -> bool:
    """The unit failed because the connection it had was lost (not because none could be made)."""
    if not _connected(bounded) or isinstance(error, LastroError):
        return False
    return classify(error) is Failure.UNREACHABLE


def _deadline_of(stop: Stop, default: float = 5.0) -> float:
    """The unit's deadline: the retry policy's `StopAfterDelay`, else `default` seconds."""
    if isinstance(stop, StopAfterDelay):
        return stop.seconds
    if isinstance(stop, StopAny):
        deadlines = [_deadline_of(strategy, float("inf")) for strategy in stop.strategies]
        return min(deadlines) if min(deadlines) != float("inf") else default
    return default
