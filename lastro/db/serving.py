"""`ServingMark`: every process that serves a SQLite database says so, in a way that cannot go stale.

Each worker (and the `lastro serve` supervisor) holds a SHARED `flock` on `<database>-lastro-serving` for
as long as it runs. The kernel drops the lock when the process ends, however it ends (SIGKILL, OOM, power
loss), so no pid file is left to lie. `lastro restore` takes the lock EXCLUSIVELY without waiting: it gets
it only when no process serves the file, and holds it while it swaps the file, so a service starting
meanwhile waits for the swap to finish rather than open a half-replaced database.

A process that cannot create the mark file (a read-only directory) serves unmarked, with a warning. On
Windows there is no flock: there restore cannot tell, and the service must be stopped first by hand.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

from lastro.observability.logging import get_logger

if sys.platform != "win32":
    import fcntl

__all__ = ["SUFFIX", "ServingMark", "mark_path", "sqlite_file"]

SUFFIX = "-lastro-serving"
logger = get_logger("lastro.db")


def mark_path(database: Path) -> Path:
    return database.with_name(database.name + SUFFIX)


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite `DATABASE_URL` names, resolved; None for PostgreSQL or an in-memory database."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # refused with its own message where the URL is used
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database).resolve()


class ServingMark:
    """The mark file of one database, held shared (serving) or exclusive (replacing it)."""

    supported = sys.platform != "win32"

    def __init__(self, database: Path) -> None:
        self.path = mark_path(database)
        self._file: IO[bytes] | None = None

    def hold_shared(self) -> bool:
        """Mark the database served by this process until `release` or the process's end; False if the
        mark could not be taken (logged), in which case the service runs unmarked. Waits for a restore in
        progress to finish."""
        if not self.supported:
            return False
        file = self._open()
        if file is None:
            return False
        fcntl.flock(file.fileno(), fcntl.LOCK_SH)
        return True

    def try_exclusive(self) -> bool:
        """Take the mark exclusively if no process serves the database now; raises OSError if the mark file
        cannot be created."""
        if not self.supported:
            return True
        file = self._open(quiet=False)
        assert file is not None
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the lock
            self._file = None

    def _open(self, *, quiet: bool = True) -> IO[bytes] | None:
        if self._file is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as error:
                if not quiet:
                    raise
                logger.warning("SQLite serving mark unavailable", path=str(self.path), error=str(error))
                return None
            self._file = os.fdopen(fd, "r+b", buffering=0)
        return self._file
