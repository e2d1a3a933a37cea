"""`WriteLock`: the workers of one SQLite file take turns to write, in order, without polling.

SQLite arbitrates writers of different processes with its busy handler: a writer that finds the lock taken
sleeps 1, 2, 5, 10... up to 100 ms and tries again. Under steady load the worker holding the lock takes it
again before the sleeper wakes, so the sleeper's waits grow until its busy timeout: a write tail of
seconds, then "database is locked" (benchmarks/RESULTS.md, "What moved the numbers").

Before `BEGIN IMMEDIATE`, each worker's writer thread takes an exclusive lock on `<database>-lastro-lock`
(`lastro.db.file_lock`: `flock` on Linux and macOS, `LockFileEx` through portalocker on Windows, chosen by
`SQLITE_WRITE_LOCK`). A waiting process sleeps in the kernel and is woken the moment the holder lets go.
SQLite's own locking is untouched: the lock file only orders lastro's writers, it never decides what is
safe. A writer that cannot open the lock file (a read-only directory, say) writes without it, as does
every other program. A lock that polls (`msvcrt.locking`, `filelock`) was measured worse than SQLite's own
handler, so none is used: without a kernel-blocking backend (`SQLITE_WRITE_LOCK=off`, or Windows without
portalocker) no lock is taken.
"""

from __future__ import annotations

from pathlib import Path

from lastro.db.file_lock import LockFile, backend_for, open_lock
from lastro.observability.logging import get_logger

__all__ = ["WriteLock", "lock_path"]

logger = get_logger("lastro.db")


def lock_path(database: Path, suffix: str = "-lastro-lock") -> Path:
    return database.with_name(database.name + suffix)


class WriteLock:
    suffix = "-lastro-lock"
    unavailable = (
        "SQLite write lock unavailable; this worker writes with the busy timeout alone"  # pragma: no mutate
    )

    def __init__(self, database: Path | None, backend: str = "auto") -> None:
        """`backend` is a value of `SQLITE_WRITE_LOCK`: auto, flock, portalocker or off."""
        self.backend = backend_for(backend) if database is not None else None
        self.path = lock_path(database, self.suffix) if database is not None and self.backend else None
        self._file: LockFile | None = None
        self._warned = False  # pragma: no mutate (whether it logged)

    def acquire(self) -> bool:
        """Block until this process is the only lastro writer of the file; False when it writes unordered."""
        file = self._open()
        if file is None:
            return False
        file.acquire()
        return True

    def try_acquire(self) -> bool:
        """Take the lock only if it is free now; False when another writer holds it or there is no lock."""
        file = self._open()
        return file is not None and file.try_acquire()

    def release(self) -> None:
        if self._file is not None:
            self._file.release()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> LockFile | None:
        if self._file is None and self.path is not None and self.backend is not None:
            try:
                self._file = open_lock(self.path, self.backend)
            except OSError as error:  # tried again next time: the directory may be back by then
                if not self._warned:  # pragma: no mutate block (log once)
                    self._warned = True
                    logger.warning(
                        self.unavailable,
                        path=str(self.path),
                        error=str(error),
                    )
                return None
        return self._file
