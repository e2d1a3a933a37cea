"""`flock` for the event loop's short holds: taken and let go without handing the GIL to another thread.

CPython's `fcntl.flock` lets go of the GIL around the system call, like every call that may block. When
another thread of the worker is waiting for the GIL (the writer thread, the broadcast's reader), it takes
it there, and the event loop then waits for that thread's turn to end before it can go on: a lock that the
kernel grants in a microsecond can cost a request tens of them (benchmarks/RESULTS.md, "Off the dependency
solver, off the GIL"). The locks lastro takes on the event loop are held for microseconds by whoever holds
them, so a free lock is taken here with the GIL kept (libc's `flock` through `ctypes.PyDLL`, which does not
release it), and only a busy one is waited for the usual way, with the GIL released, so that a slow holder
never stalls the worker's other threads. Letting go never blocks, and keeps the GIL too.

POSIX only (Windows has no `flock`); where libc cannot be loaded, plain `fcntl.flock` is used throughout.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Callable

if sys.platform != "win32":  # imported only where there is flock
    import fcntl

__all__ = ["Flock", "lock", "try_lock", "unlock"]

LibcFlock = Callable[[int, int], int]


def libc_flock() -> LibcFlock | None:
    """libc's `flock`, called with the GIL held; None where libc cannot be loaded or has none."""
    try:
        function = ctypes.PyDLL(None, use_errno=True).flock
    except (OSError, AttributeError):  # no dynamic libc (a static build), or no flock in it
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int)
    function.restype = ctypes.c_int
    return function


class Flock:
    """Exclusive `flock` on a descriptor: through `libc` with the GIL held when it is given, else through
    `fcntl.flock`."""

    def __init__(self, libc: LibcFlock | None) -> None:
        self.libc = libc

    def try_lock(self, fd: int) -> bool:
        """The exclusive lock if it is free at once, else False; never waits."""
        if self.libc is None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True
        return self._call(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def lock(self, fd: int) -> None:
        """The exclusive lock: at once if it is free, else waiting in the kernel with the GIL released."""
        if self.libc is None or not self._call(fd, fcntl.LOCK_EX | fcntl.LOCK_NB):
            fcntl.flock(fd, fcntl.LOCK_EX)

    def unlock(self, fd: int) -> None:
        if self.libc is None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            self._call(fd, fcntl.LOCK_UN)

    def _call(self, fd: int, operation: int) -> bool:
        """False if the lock is busy (with LOCK_NB); an OSError for any other failure."""
        assert self.libc is not None
        while self.libc(fd, operation) != 0:
            code = ctypes.get_errno()
            if code == errno.EWOULDBLOCK:
                return False
            if code != errno.EINTR:  # a signal came in: call again
                raise OSError(code, os.strerror(code))
        return True


_default = Flock(libc_flock())
lock, try_lock, unlock = _default.lock, _default.try_lock, _default.unlock
