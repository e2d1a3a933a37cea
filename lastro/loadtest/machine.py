"""The machine a run measures on, and the CPU of the target's processes when they run on it too."""

from __future__ import annotations

import platform
from contextlib import suppress
from pathlib import Path
from typing import Any

import psutil

from lastro._version import __version__

__all__ = ["ServerProcesses", "machine_facts"]


def cpu_model() -> str:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_facts() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        locust_version = version("locust")
    except PackageNotFoundError:
        locust_version = "not installed"
    memory = psutil.virtual_memory()
    return {
        "os": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": psutil.cpu_count() or 1,
        "ram_gb": round(memory.total / 2**30, 1),
        "python": platform.python_version(),
        "lastro": __version__,
        "locust": locust_version,
    }


class ServerProcesses:
    """The process tree that listens on a local port: `cpu_seconds()` sums its CPU time per process.

    Found anew at each sample, so a worker replaced during the run is counted from when it appears. Empty
    when nothing on this machine listens there (or it belongs to a user this one cannot see).
    """

    def __init__(self, port: int) -> None:
        self.port = port

    def tree(self) -> list[psutil.Process]:
        try:
            connections = psutil.net_connections(kind="tcp")
        except (psutil.Error, OSError):
            return []
        pids = {
            conn.pid
            for conn in connections
            if conn.pid and conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == self.port
        }
        found: dict[int, psutil.Process] = {}
        for pid in pids:
            with suppress(psutil.Error):
                process = psutil.Process(pid)
                if process.ppid() in pids:
                    continue  # a worker that inherited the socket: counted under its parent
                found[pid] = process
                for child in process.children(recursive=True):
                    found[child.pid] = child
        return list(found.values())

    def cpu_seconds(self) -> dict[int, float]:
        sample: dict[int, float] = {}
        for process in self.tree():
            with suppress(psutil.Error):
                times = process.cpu_times()
                sample[process.pid] = times.user + times.system
        return sample


def cpu_percent_between(before: dict[int, float], after: dict[int, float], seconds: float) -> float | None:
    """% of one core the processes seen in both samples used in between; None when none was seen."""
    common = before.keys() & after.keys()
    if not common or seconds <= 0:
        return None
    return 100 * sum(after[pid] - before[pid] for pid in common) / seconds
