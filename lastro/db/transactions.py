"""`Transactions`: run units of work, read-only or read-write, with retry and the circuit breaker.

A unit of work is a plain function `work(connection) -> result` that runs inside one transaction. It is
committed when it returns and rolled back when it raises; a transient failure re-runs the whole function.

Where it runs was chosen by measurement (benchmarks/RESULTS.md, "Database access"):

- SQLite, read: on the event loop, on a connection the thread keeps (`ReadConnections`). A WAL reader never
  waits for a lock, and a read by primary key costs tens of microseconds, less than the hop to a thread
  would; taking a connection from the pool and giving it back cost 23 µs more per read.
- SQLite, write: in `BEGIN IMMEDIATE`, on the event loop when no other writer holds the lock, else on one
  writer thread per worker (`lastro.db.writer`), several queued units to a transaction. The workers take
  turns through a file lock (`lastro.db.write_lock`) instead of the busy handler's sleeps, and the wait
  for the lock never blocks the event loop.
- PostgreSQL: on a thread pool as large as the connection pool, one hop per unit of work (not one per
  statement).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

from lastro.db.breaker import CircuitBreaker
from lastro.db.engine import Database
from lastro.db.failures import Failure, classify
from lastro.db.retry import Attempt, RetryPolicy
from lastro.db.sqlite import BEGIN_OPTION
from lastro.db.writer import SQLiteWriter
from lastro.errors import LastroError, ServiceUnavailable, StorageFull, one_line
from lastro.observability.logging import get_logger

__all__ = ["Mode", "ReadConnections", "Transactions", "Work"]

T = TypeVar("T")
Work = Callable[[Connection], T]
Mode = Literal["read", "write"]

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
    ) -> None:
        self.database = database
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self.inline_reads = database.is_sqlite if inline_reads is None else inline_reads
        self.retries: Counter[str] = Counter()
        self.gave_up = 0
        self._sqlite_writer = SQLiteWriter(database) if database.is_sqlite else None
        self._inline_reads = ReadConnections(database)
        if database.is_sqlite:
            # Reads run inline unless `inline_reads` is off; the threads start only if they are needed.
            self._executor = ThreadPoolExecutor(4, thread_name_prefix="lastro-db-read")
        else:
            self._executor = ThreadPoolExecutor(
                sum(database.options.postgres_pool()), thread_name_prefix="lastro-db"
            )

    async def read(self, work: Work[T]) -> T:
        """Run `work` in a read-only transaction."""
        return await self._run(work, "read")

    async def write(self, work: Work[T]) -> T:
        """Run `work` in a read-write transaction (`BEGIN IMMEDIATE` on SQLite)."""
        return await self._run(work, "write")

    async def _run(self, work: Work[T], mode: Mode) -> T:
        async def attempt() -> T:
            self.breaker.before_call()
            try:
                result = await self._execute(work, mode)
            except Exception as error:
                self._record(error)
                raise
            self.breaker.record_success()
            return result

        try:
            return await self.retry.call(attempt, retryable=_retryable, on_retry=self._on_retry)
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

    async def _execute(self, work: Work[T], mode: Mode) -> T:
        if mode == "read" and self.inline_reads:
            return self._inline_reads.run(work)
        if mode == "write" and self._sqlite_writer is not None:
            return await self._sqlite_writer.submit(work)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, work, mode)

    def _transaction(self, work: Work[T], mode: Mode) -> T:
        with self.database.engine.connect() as connection:
            if self.database.is_sqlite:
                connection.execution_options(**{BEGIN_OPTION: "IMMEDIATE" if mode == "write" else "DEFERRED"})
            with connection.begin():
                return work(connection)

    def _record(self, error: BaseException) -> None:
        if classify(error) is Failure.UNREACHABLE:
            self.breaker.record_failure(error)
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
        stats = {"retries": dict(self.retries), "gave_up": self.gave_up, "breaker": self.breaker.snapshot()}
        if self._sqlite_writer is not None:
            stats["writes"] = {
                "units": self._sqlite_writer.units,
                "inline": self._sqlite_writer.inline,
                "transactions": self._sqlite_writer.transactions,
            }
        return stats

    def close(self) -> None:
        self._inline_reads.close()
        if self._sqlite_writer is not None:
            self._sqlite_writer.close()
        self._executor.shutdown(wait=True, cancel_futures=True)


def _retryable(error: BaseException) -> bool:
    return not isinstance(error, LastroError) and classify(error).retryable
