"""`SharedFileStore`: rate-limit counts shared by the workers of one machine, with no server.

The counts live in a small file mapped into every worker's memory. It belongs in a memory file system
(`lastro.rate_limits` puts it in `/dev/shm`): a page of a mapped file on disk is written back and
write-protected again every few seconds, and the page faults and journal work that follow cost a request
more than the check itself. The file is a fixed table of `SLOTS` slots of 32 bytes: a 64-bit hash of the
key and its period, the start of its current window, and the previous and current windows' counts. A
check takes an exclusive `flock` on the file, reads and writes its slots in place, and lets go: a few
microseconds, so workers never wait long on each other, and a worker killed while holding the lock
releases it as it dies. Every worker sees every hit: the limit is exact across the workers of the machine.

On Linux every store also holds a shared lock on the file's first byte for as long as it is open (an
open-file-description lock: closing another descriptor of the file, such as the one `mmap` keeps, does not
drop it). The last store to close is the one that can take that lock exclusively: it removes the file, so
a stopped service leaves nothing in memory, while a worker restarted beside running siblings finds the
counts where they were. Elsewhere the file stays.

A key lives in one of `PROBES` slots after its hash. A slot whose windows have both ended is free; when all
of a key's slots are busy with live keys (over `SLOTS` clients within two windows), the one whose window
started first is reused, and that client's count starts again from zero.

Not on Windows (no `flock`): there the limiter counts per worker (`LocalStore`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import mmap
import os
import struct
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lastro.db import flock
from lastro.ratelimit.stores import Check, StoreUnavailable
from lastro.ratelimit.window import Decision, Rate, WindowCounts, decide, weighted

if sys.platform != "win32":
    import fcntl

__all__ = ["SharedFileStore"]

MAGIC = b"lastro-limits-1\n"  # a file of another layout is started afresh
SLOTS = 65536  # 2 MiB
PROBES = 8
ATTACH_ATTEMPTS = 10  # opens that found the file just removed by a last closer, before giving up
_SLOT = struct.Struct("<QqIII4x")  # key hash, window start (s), period (s), previous, current
_HEADER = len(MAGIC)
_FLOCK = struct.Struct("hhqqi4x")  # Linux `struct flock`: type, whence, start, length, pid (0 for OFD locks)


class SharedFileStore:
    name = "shared-file"

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        fd = _attach(path)
        try:
            size = _HEADER + SLOTS * _SLOT.size
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.fstat(fd).st_size != size or os.pread(fd, _HEADER, 0) != MAGIC:
                    os.ftruncate(fd, 0)  # zeroes every slot
                    os.ftruncate(fd, size)
                    os.pwrite(fd, MAGIC, 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    async def hit(self, checks: Sequence[Check], cost: int = 1) -> list[Decision]:
        return self.hit_now(checks, cost)

    def hit_now(self, checks: Sequence[Check], cost: int = 1) -> list[Decision]:
        now = self._clock()
        keys = [(_hash(key, rate), rate) for key, rate in checks]
        try:
            flock.lock(self._fd)
        except OSError as exc:
            raise StoreUnavailable(f"cannot lock {self.path}: {exc}") from exc
        try:
            found = [self._read(hashed, rate, now) for hashed, rate in keys]
            allowed = True
            for (_, rate), (_, counts) in zip(keys, found, strict=True):
                if weighted(rate, counts) + cost > rate.amount:
                    allowed = False
            decisions = []
            for (hashed, rate), (offset, counts) in zip(keys, found, strict=True):
                if allowed:
                    counts = WindowCounts(counts.previous, counts.current + cost, counts.elapsed)
                start = int(now // rate.period) * rate.period
                _SLOT.pack_into(
                    self._map, offset, hashed, start, rate.period, counts.previous, counts.current
                )
                decisions.append(decide(rate, counts, allowed, cost))
            return decisions
        finally:
            flock.unlock(self._fd)

    def _read(self, hashed: int, rate: Rate, now: float) -> tuple[int, WindowCounts]:
        """The slot of the key (found, free or reused) and its counts rolled forward to `now`."""
        period = rate.period
        start = int(now // period) * period
        elapsed = now - start
        home = hashed % SLOTS
        reuse, oldest = -1, None
        for probe in range(PROBES):
            offset = _HEADER + ((home + probe) % SLOTS) * _SLOT.size
            slot_hash, slot_start, slot_period, previous, current = _SLOT.unpack_from(self._map, offset)
            if slot_hash == hashed:
                if slot_start == start:
                    return offset, WindowCounts(previous, current, elapsed)
                if slot_start == start - period:
                    return offset, WindowCounts(current, 0, elapsed)
                return offset, WindowCounts(0, 0, elapsed)
            if reuse < 0 and (slot_hash == 0 or slot_start + 2 * slot_period <= now):
                reuse = offset
            elif oldest is None or slot_start < oldest[0]:
                oldest = (slot_start, offset)
        if reuse < 0:
            assert oldest is not None
            reuse = oldest[1]
        return reuse, WindowCounts(0, 0, elapsed)

    async def ping(self) -> None:
        pass  # a mapped file always answers

    def slot_of(self, key: str, rate: Rate) -> int:
        """The first slot `key` may live in (its home); where it is depends on its neighbours."""
        return _hash(key, rate) % SLOTS

    async def close(self) -> None:
        if self._map.closed:
            return
        self._map.close()
        try:
            if _hold(self._fd, exclusive=True):  # granted only when no other store has the file open
                with contextlib.suppress(OSError):
                    if _same_file(self._fd, self.path):
                        os.unlink(self.path)
        finally:
            os.close(self._fd)


def _attach(path: Path) -> int:
    """The table's file, open and held shared (created when missing); an `OSError` when it cannot be, or
    when another user owns it: the counts of a file anyone else can write would be theirs to set."""
    for _ in range(ATTACH_ATTEMPTS):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            _hold(fd, exclusive=False)  # waits while a last closer removes the file
            if _same_file(fd, path):  # else it was removed between the open and the lock: open it again
                if os.fstat(fd).st_uid != os.getuid():
                    raise PermissionError(f"{path} belongs to another user")
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise OSError(f"{path} was removed {ATTACH_ATTEMPTS} times while being opened")


def _hold(fd: int, *, exclusive: bool) -> bool:
    """Shared (waiting for it) or exclusive (only if free at once) hold of the file's first byte; False
    when the exclusive hold is taken, or where there are no open-file-description locks."""
    command = getattr(fcntl, "F_OFD_SETLK" if exclusive else "F_OFD_SETLKW", None)
    if command is None:  # not Linux: the file is never removed
        return False
    kind = fcntl.F_WRLCK if exclusive else fcntl.F_RDLCK
    try:
        fcntl.fcntl(fd, command, _FLOCK.pack(kind, os.SEEK_SET, 0, 1, 0))
    except (BlockingIOError, PermissionError):  # held elsewhere (EAGAIN, or EACCES as POSIX allows)
        return False
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


@functools.lru_cache(maxsize=4096)  # a client's key comes back on its every request
def _hash(key: str, rate: Rate) -> int:
    digest = hashlib.blake2b(f"{rate.period}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1  # 0 marks a free slot
