"""`DiskWatch`: the free space under the SQLite database, and what a recent "disk full" means for `/health`.

- **Before the disk is full**: `/health/ready` answers 503 while the database's volume has fewer than
  `DISK_MIN_FREE_BYTES` free, so a load balancer moves traffic away while writes still succeed.
- **After a write met a full disk** (`SQLITE_FULL`, PostgreSQL's `53100`, `ENOSPC` in a `FileStore`, all
  raised as `StorageFull` and answered 507): ready answers 503 until the database's volume has at least
  1 MiB more free than at the last such failure, or `hold` seconds have passed without one. The second way
  ends it where space cannot be measured here (PostgreSQL's disk, files on another volume) or was freed
  inside the database file; if the disk is still full, the next write fails and starts it again.
- **Logs**: one line per kind of failure per minute, with the count of those not logged; no traceback.

PostgreSQL has no volume on this machine: the check then reports only a recent failure.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import anyio.to_thread

from lastro.health import CheckFailed, CheckResult
from lastro.observability.logging import get_logger
from lastro.observability.throttle import LogThrottle

__all__ = ["SPACE_BACK_BYTES", "DiskWatch"]

SPACE_BACK_BYTES = 1024 * 1024

logger = get_logger("lastro.disk")


class Usage(NamedTuple):
    total: int
    used: int
    free: int


@dataclass
class _Full:
    detail: str
    at: float
    free: int | None


class DiskWatch:
    def __init__(
        self,
        directory: Path | None,
        *,
        min_free: int,
        hold: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        usage: Callable[[Path], tuple[int, int, int]] = shutil.disk_usage,
    ) -> None:
        self.directory = directory
        self.min_free = min_free
        self.hold = hold
        self.failures = 0
        self._clock = clock
        self._usage = usage
        self._full: _Full | None = None
        self._throttle = LogThrottle(60.0, clock=clock)

    def full(self, detail: str) -> None:
        """Record a write refused for lack of space; called by the 507 handler, on the event loop."""
        self.failures += 1
        self._full = _Full(detail, self._clock(), self._free())
        not_logged = self._throttle.admit(detail)
        if not_logged is not None:
            logger.error("storage full", detail=detail, not_logged_since_last=not_logged)

    def status(self, usage: Usage | None) -> tuple[str | None, CheckResult]:
        """(why ready should fail or None, the figures for `/health`) given the volume's usage now."""
        detail: CheckResult = {"storage_full_failures": self.failures}
        problems = []
        if usage is not None:
            detail |= {
                "path": str(self.directory),
                "free_bytes": usage.free,
                "total_bytes": usage.total,
                "min_free_bytes": self.min_free,
            }
            if usage.free < self.min_free:
                problems.append(f"{usage.free} bytes free, below DISK_MIN_FREE_BYTES={self.min_free}")
        full = self._full
        if full is not None and self._recovered(full, usage):
            logger.info("storage writable again", detail=full.detail)
            self._full = full = None
        if full is not None:
            ago = round(self._clock() - full.at, 3)
            detail["storage_full"] = {"detail": full.detail, "seconds_ago": ago}
            problems.append(f"a write met a full disk {ago:g} s ago: {full.detail}")
        return ("; ".join(problems) or None), detail

    async def check(self) -> CheckResult:
        usage = await anyio.to_thread.run_sync(self._measure, abandon_on_cancel=True)
        problem, detail = self.status(usage)
        if problem is not None:
            raise CheckFailed(problem, **detail)
        return detail

    def _recovered(self, full: _Full, usage: Usage | None) -> bool:
        if self._clock() - full.at >= self.hold:
            return True
        return usage is not None and full.free is not None and usage.free >= full.free + SPACE_BACK_BYTES

    def _measure(self) -> Usage | None:
        if self.directory is None:
            return None
        return Usage(*self._usage(self.directory))

    def _free(self) -> int | None:
        try:
            usage = self._measure()
        except OSError:
            return None
        return None if usage is None else usage.free
