"""What a worker process uses: memory, CPU, threads and file descriptors, read with psutil."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

__all__ = ["ProcessSample", "ProcessSampler"]


@dataclass(frozen=True, slots=True)
class ProcessSample:
    pid: int
    rss_bytes: int
    rss_percent: float  # of the machine's RAM
    cpu_seconds: float  # user + system, since the process started
    cpu_percent: float  # of one core, since the previous sample (0 for the first)
    threads: int
    open_fds: int  # -1 where the platform cannot count them (Windows)
    age_seconds: float


class ProcessSampler:
    """Samples one process (this one by default); CPU % is measured between two samples."""

    def __init__(self, pid: int | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._process = psutil.Process(pid if pid is not None else os.getpid())
        self._clock = clock
        self._total_ram = psutil.virtual_memory().total
        self._created = self._process.create_time()
        self._last: tuple[float, float] | None = None  # (clock, cpu seconds) of the previous sample

    def sample(self) -> ProcessSample:
        process = self._process
        with process.oneshot():  # one read of /proc for all of it
            rss = process.memory_info().rss
            times = process.cpu_times()
            threads = process.num_threads()
            fds = process.num_fds() if hasattr(process, "num_fds") else -1
        cpu = times.user + times.system
        now = self._clock()
        percent = 0.0
        if self._last is not None and now > self._last[0]:
            percent = 100.0 * (cpu - self._last[1]) / (now - self._last[0])
        self._last = (now, cpu)
        return ProcessSample(
            pid=process.pid,
            rss_bytes=rss,
            rss_percent=100.0 * rss / self._total_ram,
            cpu_seconds=cpu,
            cpu_percent=max(0.0, percent),
            threads=threads,
            open_fds=fds,
            age_seconds=max(0.0, time.time() - self._created),
        )
