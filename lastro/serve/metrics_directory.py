"""The directory where a service's workers keep their metrics (prometheus_client's multiprocess mode).

The supervisor prepares it before any worker starts and exports `PROMETHEUS_MULTIPROC_DIR`, which the
workers inherit: in shared memory (`lastro.shared_memory`: a metric is a write to a mapped page, which a
disk would make fault), one directory per service and bound address (two services never listen on one at
once), emptied at start so that a previous run's counts never add to this one's. When a worker is gone,
its live gauges (in progress, per-worker memory) and its slowest requests (`lastro.observability.slowest`)
are dropped; its counters are folded into an archive file, so totals neither fall back nor count twice,
and a scrape reads a handful of files however many workers have come and gone. An operator who exports the
variable themselves keeps their directory; it is emptied the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

from lastro.observability.logging import get_logger
from lastro.observability.metric_files import fold
from lastro.observability.metrics import DIRECTORY_ENV
from lastro.observability.slowest import slow_file
from lastro.settings import Settings
from lastro.shared_memory import memory_directory

__all__ = ["MetricsDirectory"]

logger = get_logger("lastro.serve")


class MetricsDirectory:
    def __init__(self, settings: Settings, address: str) -> None:
        given = os.environ.get(DIRECTORY_ENV)
        digest = hashlib.sha256(f"{settings.SERVICE_NAME}\n{address}".encode()).hexdigest()[:16]
        own = memory_directory(settings.SHARED_MEMORY_DIR) / f"lastro-metrics-{digest}"
        self.path = Path(given) if given else own
        self._owned = not given

    def prepare(self) -> Path:
        """Create or empty the directory and export it to the workers to come."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._empty()
        os.environ[DIRECTORY_ENV] = str(self.path)
        return self.path

    def worker_exited(self, pid: int) -> None:
        """Drop the live gauges and the slowest requests of worker `pid`; fold its counts into the archive
        (`metric_files.fold`)."""
        from prometheus_client.multiprocess import mark_process_dead  # after DIRECTORY_ENV is exported

        mark_process_dead(pid, str(self.path))  # type: ignore[no-untyped-call]
        slow_file(self.path, pid).unlink(missing_ok=True)  # its slowest requests leave the dashboard
        try:
            fold(self.path, pid)
        except OSError as exc:  # its files stay and still count; only the scrape gets slower
            logger.warning("could not fold a gone worker's metrics", pid=pid, error=str(exc))

    def remove(self) -> None:
        """Once every worker has stopped: the directory lastro made goes; an operator's is left empty."""
        if self._owned:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            self._empty()

    def _empty(self) -> None:
        # The workers' counts (*.db) and the dashboard's files (*.json): when the counts started, the
        # recent readings, each worker's slowest requests.
        for stale in (*self.path.glob("*.db"), *self.path.glob("*.json")):
            with contextlib.suppress(OSError):
                stale.unlink()
