"""The servers the benchmarks start: the tests' harness (`tests/support/process.py`), tuned for measuring.

A benchmark server waits longer to be ready (the machine may be loaded), polls its ready path every 20 ms
(start-up time is one of the figures), rests a moment once ready so that the workers starting alongside the
first one are up before a load begins, and reads its worker processes' CPU time and memory from /proc.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from lastro.settings import Settings
from tests.support.process import ROOT, ServerProcess, free_port

__all__ = ["BIN", "HOST", "ROOT", "Server", "cpu_seconds", "free_port", "lastro_env"]

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
TICK = os.sysconf("SC_CLK_TCK")


class Server(ServerProcess):
    """A server on a known port, ready once `ready_path` answers 200; stopped with SIGTERM at the end."""

    ready_timeout = 60.0
    stop_timeout = 40.0
    poll_interval = 0.02
    settle = 0.5  # seconds after the first ready answer: the other workers start alongside the first

    def __init__(
        self, argv: list[str], port: int, ready_path: str, env: dict[str, str], log: Path, root: Path = ROOT
    ) -> None:
        # The code it runs is `root`'s: on the path first, and the directory `lastro serve` imports from.
        env = {**env, "PYTHONPATH": str(root)}
        super().__init__(argv, env, log, port=port, ready_path=ready_path, cwd=root)

    @property
    def log(self) -> Path:
        return self.log_path

    def __enter__(self) -> Self:
        super().__enter__()
        time.sleep(self.settle)
        return self

    def workers(self) -> list[int]:
        """The worker processes: children of the server process, less multiprocessing's resource tracker."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) != self.process.pid:
                    continue
                cmdline = (stat.parent / "cmdline").read_bytes()
                if b"resource_tracker" not in cmdline:
                    found.append(int(stat.parent.name))
        return sorted(found)

    def worker_rss(self) -> dict[str, Any]:
        """VmRSS of each worker, and PSS: forked workers share pages with their parent and each other,
        which VmRSS counts in full in every process and PSS divides among the processes sharing them."""
        rss, pss = {}, {}
        for pid in self.workers():
            with contextlib.suppress(OSError):
                rss[pid] = _proc_kib(Path(f"/proc/{pid}/status"), "VmRSS:") / 1024
                pss[pid] = _proc_kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss:") / 1024
        values = list(rss.values())
        return {
            "workers": len(values),
            "sum_mb": round(sum(values), 1),
            "max_mb": round(max(values, default=0.0), 1),
            "per_worker_mb": [round(value, 1) for value in values],
            "pss_sum_mb": round(sum(pss.values()), 1),
            "pss_per_worker_mb": [round(value, 1) for value in pss.values()],
        }


def _proc_kib(path: Path, field: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time the processes have used: what a request costs, whatever else runs."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICK


def lastro_env(workdir: Path, port: int, workers: int, **extra: str) -> dict[str, str]:
    """The environment of a `lastro serve` child: development, quiet, its own database, and `extra`."""
    env = {name: value for name, value in os.environ.items() if name.upper() not in Settings.model_fields}
    env.update(
        ENVIRONMENT="development",
        LOG_LEVEL="warning",
        WORKERS=str(workers),
        BIND=f"{HOST}:{port}",
        DATABASE_URL=f"sqlite:///{workdir / 'x.db'}",
        # Limits on, as deployed, and high enough that one load generator's address is never refused.
        RATE_LIMIT_DEFAULT="1000000/minute",
        RATE_LIMIT_LOGIN="1000000/minute",
    )
    env.update(extra)
    return env
