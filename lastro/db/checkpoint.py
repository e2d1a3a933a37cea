"""`WalCheckpointer`: keep a SQLite WAL file under `SQLITE_WAL_MAX_BYTES`, whatever the readers do.

SQLite checkpoints by itself at commit (PASSIVE, every 1000 pages), but a passive checkpoint stops at the
oldest snapshot a reader still holds, and the WAL starts over from its beginning only once nobody reads
from it. Under constant reads that never happens and the file grows without bound ("checkpoint
starvation" in SQLite's WAL documentation).

So a background task of each worker looks at the size of `<database>-wal` twenty times a second (a write
load can add megabytes a second). Past the limit, off the event loop, it runs
`PRAGMA wal_checkpoint(TRUNCATE)` on a connection of its own:

- **once across workers**: a non-blocking lock (the write lock's backend, `SQLITE_WRITE_LOCK`) on
  `<database>-lastro-checkpoint`; a worker that finds it taken skips its turn, another is already at it.
- **holding the write lock** (`lastro.db.write_lock`): TRUNCATE must wait for the writer to finish and
  then blocks new ones; taking lastro's own lock first queues the workers' writers in the kernel for the
  tens of milliseconds it lasts, instead of racing them through SQLite's busy handler.
- **a bounded wait for readers**: a busy timeout of `busy_timeout_ms` on that connection. Readers that
  began before the checkpoint finish in milliseconds (units of work are short); new ones read from the
  database file and do not hold the WAL. If the time runs out, the checkpoint counts as incomplete and the
  next turn tries again.

`journal_size_limit` (set to the same limit, see `lastro.db.sqlite.pragmas_for`) also truncates the file
whenever SQLite restarts the WAL by itself. Without a lock backend (`SQLITE_WRITE_LOCK=off`, or Windows
without portalocker) each worker checkpoints alone, which is safe, only redundant.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread

from lastro.db import sqlite
from lastro.db.polling import IdleBackoff
from lastro.db.write_lock import WriteLock, lock_path
from lastro.errors import one_line
from lastro.observability.logging import get_logger
from lastro.observability.throttle import LogThrottle

__all__ = ["CheckpointLock", "WalCheckpointer", "checkpoint_lock_path", "wal_path"]

logger = get_logger("lastro.db")


def wal_path(database: Path) -> Path:
    return database.with_name(database.name + "-wal")


def checkpoint_lock_path(database: Path) -> Path:
    return lock_path(database, CheckpointLock.suffix)


class CheckpointLock(WriteLock):
    """A non-blocking, cross-process lock: at most one worker checkpoints a database at a time.

    The write lock's backend on a file of its own. Where there is no lock backend, every worker may.
    """

    suffix = "-lastro-checkpoint"
    unavailable = "WAL checkpoint lock unavailable; this worker does not checkpoint"  # pragma: no mutate

    def try_acquire(self) -> bool:
        return self.path is None or super().try_acquire()

    def release(self) -> None:
        super().release()
        self.close()  # taken a few times a minute at most: no descriptor kept open between turns


class WalCheckpointer:
    def __init__(
        self,
        database: Path,
        max_bytes: int,
        *,
        interval: float = 0.05,
        idle_interval: float = 1.0,
        busy_timeout_ms: int = 1000,
        lock_backend: str = "auto",
    ) -> None:
        self.database = database.resolve()
        self.max_bytes = max_bytes
        self.interval = interval
        self.idle_interval = idle_interval
        self.busy_timeout_ms = busy_timeout_ms
        self.checkpoints = 0
        self.incomplete = 0
        self.skipped = 0
        self.last_duration_ms: float | None = None
        self.wal = wal_path(self.database)
        self.lock_backend = lock_backend
        self._lock = CheckpointLock(self.database, lock_backend)
        self._throttle = LogThrottle(60.0)  # pragma: no mutate (how often it logs)

    def wal_bytes(self) -> int:
        try:
            return self.wal.stat().st_size
        except FileNotFoundError:
            return 0

    def run_once(self) -> bool | None:
        """Checkpoint if the WAL is over the limit: True if it was truncated, False if it could not be,
        None if nothing was done (under the limit, or another worker holds the checkpoint lock)."""
        if self.wal_bytes() <= self.max_bytes:
            return None
        if not self._lock.try_acquire():
            self.skipped += 1
            return None
        try:
            if self.wal_bytes() <= self.max_bytes:  # another worker truncated it a moment ago
                return None
            return self._checkpoint()
        finally:
            self._lock.release()

    def _checkpoint(self) -> bool:
        started = time.perf_counter()
        writers = WriteLock(self.database, self.lock_backend)
        writers.acquire()
        try:
            busy = self._truncate()
        finally:
            writers.release()
            writers.close()
        self.last_duration_ms = round((time.perf_counter() - started) * 1000, 3)
        if busy:
            self.incomplete += 1
            self._log("WAL checkpoint incomplete: readers held it past the busy timeout")
            return False
        self.checkpoints += 1
        return True

    def _truncate(self) -> bool:
        uri = f"file:{quote(str(self.database))}?mode=rw"
        connection: Any = sqlite.driver().connect(uri, uri=True, timeout=self.busy_timeout_ms / 1000)
        try:
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            connection.close()
        return bool(busy)

    async def watch(self) -> None:
        """The background task: look at the WAL every `interval` seconds while it grows, up to every
        `idle_interval` seconds while it keeps its size; checkpoint when it is too large."""
        backoff = IdleBackoff(self.interval, self.idle_interval)
        seen = None
        while True:
            # A stat on the event loop costs microseconds; only a WAL over the limit is worth a thread.
            size = self.wal_bytes()
            if size > self.max_bytes:
                try:
                    await anyio.to_thread.run_sync(self.run_once, abandon_on_cancel=True)
                except Exception as error:  # a full disk, say: logged, and tried again next turn
                    self._log("WAL checkpoint failed", error=one_line(error))
            changed, seen = size != seen or size > self.max_bytes, size
            await asyncio.sleep(backoff.after(changed))

    async def check(self) -> dict[str, Any]:
        return {
            "wal_bytes": self.wal_bytes(),
            "wal_max_bytes": self.max_bytes,
            "checkpoints": self.checkpoints,
            "incomplete": self.incomplete,
            "skipped": self.skipped,
            "last_duration_ms": self.last_duration_ms,
        }

    def _log(self, event: str, **fields: Any) -> None:  # pragma: no mutate block (log lines only)
        not_logged = self._throttle.admit(event)
        if not_logged is not None:
            logger.warning(event, wal_bytes=self.wal_bytes(), not_logged_since_last=not_logged, **fields)
