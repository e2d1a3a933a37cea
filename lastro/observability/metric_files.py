"""The workers' metric files: read under a shared lock, and a gone worker's counts folded into one archive.

Each worker that ever ran leaves a counter file and a histogram file (prometheus_client's multiprocess
mode, `counter_<pid>.db`); a worker recycled every few minutes would leave thousands a week, and every
scrape reads them all. When the supervisor sees a worker go, it adds the worker's counts into
`counter_archive.db` and `histogram_archive.db` and removes its files. A scrape reads under a shared lock
and the fold takes it exclusively, so a scrape sees a worker's counts exactly once: in its file, or in the
archive. Where there is no `flock` (Windows) nothing is folded, and the files stay until the service stops.

This writes through prometheus_client's `MmapedDict`, which is not part of its documented API (its
`MultiProcessCollector.merge` anticipates writing merged values back to files, and this is that):
prometheus_client is pinned below its next minor version, and tests/observability/test_metric_files.py
checks the names used here.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ARCHIVE", "fold", "reading"]

ARCHIVE = "archive"
LOCK = ".lock"  # not *.db: the collector reads every *.db file
FOLDED = ("counter", "histogram")  # kinds whose values add up; live gauges go with their worker

if sys.platform != "win32":
    import fcntl


@contextlib.contextmanager
def reading(directory: Path) -> Iterator[None]:
    """Hold the files still while the block reads them (a fold waits)."""
    with _locked(directory, shared=True):
        yield


def fold(directory: Path, pid: int) -> None:
    """Add the counts of worker `pid`, which has exited, into the archive files, and remove its files."""
    if sys.platform == "win32":
        return
    from prometheus_client.mmap_dict import MmapedDict

    with _locked(directory, shared=False):
        for kind in FOLDED:
            gone = directory / f"{kind}_{pid}.db"
            if not gone.exists():
                continue
            values = MmapedDict.read_all_values_from_file(str(gone))  # type: ignore[no-untyped-call]
            archive = MmapedDict(str(directory / f"{kind}_{ARCHIVE}.db"))  # type: ignore[no-untyped-call]
            try:
                for key, value, _, _ in values:
                    total, _ = archive.read_value(key)  # type: ignore[no-untyped-call]
                    archive.write_value(key, total + value, 0.0)  # type: ignore[no-untyped-call]
            finally:
                archive.close()  # type: ignore[no-untyped-call]
            gone.unlink()


@contextlib.contextmanager
def _locked(directory: Path, *, shared: bool) -> Iterator[None]:
    if sys.platform == "win32":
        yield
        return
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and the lock with it
