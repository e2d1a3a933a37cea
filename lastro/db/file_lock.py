"""An exclusive lock on a file, shared by lastro's processes, that waits in the kernel: one interface, two
backends, chosen by `SQLITE_WRITE_LOCK`.

- **flock** (Linux, macOS): `flock(LOCK_EX)`. A waiting process sleeps in the kernel and is woken the
  moment the holder lets go (or exits: the kernel drops the lock with the last descriptor). A free lock is
  taken, and any lock let go, without handing the GIL to another thread (`lastro.db.flock`).
- **portalocker** (Windows): `LockFileEx` with `LOCKFILE_EXCLUSIVE_LOCK`, through portalocker's
  `Win32Locker` (pywin32, the `portalocker[win32]` extra that lastro requires on Windows). A blocking
  acquire passes no `LOCKFILE_FAIL_IMMEDIATELY`, so the call waits in the kernel until the holder calls
  `UnlockFileEx` or closes its handle, as `flock` does; a non-blocking one passes it and gets
  `ERROR_LOCK_VIOLATION`. This is NOT portalocker's default Windows locker: that one (`MsvcrtLocker`) is
  `msvcrt.locking(LK_LOCK)`, which retries once a second, ten times, worse than SQLite's own busy handler.
  On Linux and macOS the same backend is portalocker's `FlockLocker`, i.e. `fcntl.flock`: that is how its
  code path (open, lock, unlock, close, the exceptions it raises) runs in the tests here.

`auto` is flock on POSIX, portalocker on Windows when it is installed, and no lock otherwise (one warning:
the writers are then ordered by SQLite's busy handler alone). `off` takes no lock anywhere.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from lastro.errors import ConfigurationError
from lastro.observability.logging import get_logger

if sys.platform != "win32":
    from lastro.db import flock

__all__ = ["Backend", "LockFile", "backend_for", "check_backend", "open_lock"]

Backend = Literal["flock", "portalocker"]
logger = get_logger("lastro.db")
_warned_no_lock = False  # pragma: no mutate (auto on Windows without portalocker warns once per process)


class LockFile(Protocol):
    """An open lock file: `acquire` blocks in the kernel, `try_acquire` never waits."""

    def acquire(self) -> None: ...

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...

    def close(self) -> None: ...


def _open(path: Path) -> IO[bytes]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    return os.fdopen(fd, "r+b", buffering=0)


class FlockFile:
    """`flock` on `path`, created if missing; a free lock is taken without handing the GIL to another
    thread (`lastro.db.flock`)."""

    def __init__(self, path: Path) -> None:
        self._file = _open(path)

    def acquire(self) -> None:
        flock.lock(self._file.fileno())

    def try_acquire(self) -> bool:
        return flock.try_lock(self._file.fileno())

    def release(self) -> None:
        flock.unlock(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _native_locker() -> Any:
    """portalocker's locker that waits in the kernel: Win32Locker (LockFileEx) on Windows, else flock."""
    from portalocker import portalocker

    if sys.platform == "win32":
        return portalocker.Win32Locker()
    return portalocker.FlockLocker()


class PortalockerFile:
    """portalocker's kernel-blocking locker on `path`, created if missing."""

    def __init__(self, path: Path) -> None:
        from portalocker import AlreadyLocked, LockFlags

        self._locker = _native_locker()
        self._flags, self._busy = LockFlags, AlreadyLocked
        self._file = _open(path)

    def acquire(self) -> None:
        self._locker.lock(self._file, self._flags.EXCLUSIVE)

    def try_acquire(self) -> bool:
        try:
            self._locker.lock(self._file, self._flags.EXCLUSIVE | self._flags.NON_BLOCKING)
        except self._busy:
            return False
        return True

    def release(self) -> None:
        self._locker.unlock(self._file)

    def close(self) -> None:
        self._file.close()


def open_lock(path: Path, backend: Backend) -> LockFile:
    """The lock file at `path` for `backend`; OSError if it cannot be opened."""
    return PortalockerFile(path) if backend == "portalocker" else FlockFile(path)


def _portalocker_usable(platform: str) -> bool:
    if importlib.util.find_spec("portalocker") is None:
        return False
    # Win32Locker needs pywin32 (portalocker's win32 extra); without it only msvcrt's polling lock is left.
    return platform != "win32" or importlib.util.find_spec("win32file") is not None


def backend_for(setting: str, platform: str = sys.platform) -> Backend | None:
    """The backend `SQLITE_WRITE_LOCK=setting` selects on `platform`; None: writers take no lock file."""
    global _warned_no_lock
    if setting == "off":
        return None
    if setting in ("flock", "portalocker"):
        return setting  # type: ignore[return-value]
    if platform != "win32":
        return "flock"
    if _portalocker_usable(platform):
        return "portalocker"
    if not _warned_no_lock:  # pragma: no mutate block (log once)
        _warned_no_lock = True
        logger.warning(
            "SQLite write lock off: portalocker[win32] is not installed (pip install 'portalocker[win32]'); "
            "writers are ordered by SQLite's busy handler alone"
        )
    return None


def check_backend(setting: str, platform: str = sys.platform) -> None:
    """Raise ConfigurationError, naming the setting, when the backend it asks for cannot run here."""
    if setting == "flock" and platform == "win32":
        raise ConfigurationError(
            "SQLITE_WRITE_LOCK=flock needs fcntl, which Windows lacks; use auto or portalocker"
        )
    if setting == "portalocker" and not _portalocker_usable(platform):
        package = "portalocker[win32]" if platform == "win32" else "portalocker"
        raise ConfigurationError(
            f"SQLITE_WRITE_LOCK=portalocker needs the {package} package (pip install '{package}'); "
            "or use auto, flock or off"
        )
