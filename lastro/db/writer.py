"""`SQLiteWriter`: the write units of a worker, inline when nobody else writes, else queued and batched.

SQLite has one writer at a time, so the units of a worker queue anyway; what costs is each transaction:
taking the lock across processes, `BEGIN IMMEDIATE`, writing the pages to the WAL at `COMMIT`.

- **Uncontended**: nothing is queued and the write lock is free at this instant (a non-blocking try), so
  the unit runs at once on the event loop, like a read, with the busy timeout at zero: it cannot wait. A
  hop to a thread buys nothing here (the GIL) and costs a turn of the event loop, which under load is the
  whole queue of ready requests: a POST then waits far longer than the GETs beside it (benchmarks/RESULTS.md,
  "What moved the numbers").
- **Contended**: the unit goes to the writer thread, which waits for the lock off the loop. When units
  are waiting, it takes up to `max_batch` of them and runs them in one transaction, each inside its own
  savepoint: a unit that raises rolls back only its own changes and gets its own exception.

Results are handed out only after `COMMIT`, so no caller ever sees a write that was not stored.

If the shared transaction itself fails (the lock, `COMMIT`, a savepoint that cannot roll back), each unit
of the batch runs again alone, so no unit ever fails because of another one. A unit alone runs exactly as
it would without batching. The exception is a COMMIT that failed with an I/O error after ending the
transaction: whether it was applied is unknown (`lastro.db.outcome`), so no unit of it runs again and each
raises `CommitOutcomeUnknown`.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from sqlalchemy import Connection, RootTransaction

from lastro.db.engine import Database
from lastro.db.failures import Failure, classify
from lastro.db.outcome import sqlite_commit_in_doubt
from lastro.db.sqlite import BEGIN_OPTION, driver_connection, effective_pragmas
from lastro.db.threads import settle_threadsafe
from lastro.db.write_lock import WriteLock
from lastro.errors import CommitOutcomeUnknown, one_line

__all__ = ["SQLiteWriter"]

T = TypeVar("T")
Unit = tuple[Callable[[Connection], Any], asyncio.AbstractEventLoop, asyncio.Future[Any]]
Outcome = tuple[bool, Any]  # (True, result) or (False, exception)

_SAVEPOINT_STATEMENTS = ("SAVEPOINT lastro_unit", "ROLLBACK TO lastro_unit", "RELEASE lastro_unit")
_BUSY = object()  # an inline attempt that found the database locked by a program outside lastro


class SQLiteWriter:
    def __init__(self, database: Database, *, max_batch: int = 32) -> None:
        self.database = database
        self.max_batch = max_batch
        self.lock = WriteLock(database.sqlite_path, database.options.sqlite_write_lock)
        self.transactions = 0
        self.units = 0
        self.inline = 0
        self._busy_timeout = int(effective_pragmas(database.options.sqlite_pragmas)["busy_timeout"])
        # Writers of this process take turns here; the file lock orders the processes.
        self._turn = threading.Lock()
        self._queue: queue.SimpleQueue[Unit | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    async def submit(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in a write transaction, inline if nobody else writes, else on the writer thread."""
        if self._closed:
            raise RuntimeError("the SQLite writer is closed")
        if self._queue.empty() and self._turn.acquire(blocking=False):
            try:
                result = self._inline(work) if self.lock.try_acquire() else _BUSY
            finally:
                self._turn.release()
            if result is not _BUSY:
                return result  # type: ignore[return-value]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((work, loop, future))
        self._ensure_thread()
        return await future

    @property
    def queued(self) -> int:
        """Write units waiting for the writer thread (approximate while units come and go)."""
        return self._queue.qsize()

    def close(self) -> None:
        """Finish the units already queued, then stop the thread."""
        self._closed = True
        with self._start_lock:
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join()
        self.lock.close()

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._serve, name="lastro-db-write", daemon=True)
                    self._thread.start()

    def _serve(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    unit = self._queue.get_nowait()
                except queue.Empty:
                    break
                if unit is None:
                    stop = True
                    break
                batch.append(unit)
            self._run([unit for unit in batch if not unit[2].cancelled()])  # nobody waits for a cancelled one
            if stop:
                return

    def _run(self, batch: list[Unit]) -> None:
        if len(batch) <= 1:
            for unit in batch:
                self._alone(unit)
            return
        try:
            works = [work for work, _, _ in batch]
            outcomes = self._transaction(lambda connection: [_in_savepoint(connection, w) for w in works])
        except CommitOutcomeUnknown as unknown:
            for _, loop, future in batch:
                settle_threadsafe(loop, future, False, CommitOutcomeUnknown(unknown.detail))
            return
        except Exception:
            for unit in batch:
                self._alone(unit)
            return
        self.units += len(batch)
        for (_, loop, future), (ok, value) in zip(batch, outcomes, strict=True):
            settle_threadsafe(loop, future, ok, value)

    def _alone(self, unit: Unit) -> None:
        work, loop, future = unit
        try:
            result = self._transaction(work)
        except Exception as error:
            settle_threadsafe(loop, future, False, error)
        else:
            self.units += 1
            settle_threadsafe(loop, future, True, result)

    def _inline(self, work: Callable[[Connection], T]) -> T | object:
        """Run `work` now, on the caller's thread, holding the file lock; `_BUSY` if SQLite is locked."""
        try:
            with self.database.engine.connect() as connection:
                connection.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
                transaction = self._begin_without_waiting(connection)
                if transaction is None:
                    return _BUSY
                with transaction:
                    result = work(connection)
                    _commit(connection, transaction)
        finally:
            self.lock.release()
        self.transactions += 1
        self.units += 1
        self.inline += 1
        return result

    def _begin_without_waiting(self, connection: Connection) -> RootTransaction | None:
        driver = driver_connection(connection)
        driver.execute("PRAGMA busy_timeout=0")
        try:
            return connection.begin()
        except Exception as error:
            if classify(error) is Failure.CONTENTION:
                return None
            raise
        finally:
            try:
                driver.execute(f"PRAGMA busy_timeout={self._busy_timeout}")
            except Exception:  # a broken connection: never let it back into the pool without its timeout
                connection.invalidate()

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        with self.database.engine.connect() as connection:
            connection.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
            with self._locked(), connection.begin() as transaction:
                result = work(connection)
                _commit(connection, transaction)
        self.transactions += 1
        return result

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._turn:
            locked = self.lock.acquire()
            try:
                yield
            finally:
                if locked:
                    self.lock.release()


def _commit(connection: Connection, transaction: RootTransaction) -> None:
    """COMMIT; one that failed with an I/O error after ending the transaction may have been applied."""
    try:
        transaction.commit()
    except Exception as error:
        try:
            driver = driver_connection(connection)
            in_transaction = bool(driver.in_transaction)
            if in_transaction:
                driver.rollback()  # SQLite kept it open (a deferred constraint, say): now not applied
        except Exception:
            in_transaction = False  # the connection is gone: nothing tells that the transaction survived
            with suppress(Exception):
                connection.invalidate()
        if sqlite_commit_in_doubt(error, in_transaction):
            raise CommitOutcomeUnknown(
                f"SQLite's COMMIT failed with an I/O error, applied or not: {one_line(error)}"
            ) from error
        raise


def _in_savepoint(connection: Connection, work: Callable[[Connection], Any]) -> Outcome:
    driver = driver_connection(connection)
    driver.execute(_SAVEPOINT_STATEMENTS[0])
    try:
        result = work(connection)
    except Exception as error:
        # If the rollback itself fails, the shared transaction is lost: the batch runs again unit by unit.
        driver.execute(_SAVEPOINT_STATEMENTS[1])
        driver.execute(_SAVEPOINT_STATEMENTS[2])
        return False, error
    driver.execute(_SAVEPOINT_STATEMENTS[2])
    return True, result
