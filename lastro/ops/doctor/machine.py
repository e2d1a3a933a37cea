"""The facts about the machine `lastro doctor` weighs the settings against, read in one place.

Each fact is read through a path or a function held by `Machine`, so that a test hands in a machine of
its own (a cgroup tree, a mount table, a meminfo in a temporary directory) and nothing depends on the
machine the tests run on. `Machine.here()` reads this one.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Machine", "cpu_quota", "memory_available", "memory_limit", "memory_total"]

# cgroup v1 writes "no limit" as the largest page-aligned 64-bit value; anything this large is none.
UNLIMITED_BYTES = 1 << 60


def _run(command: list[str]) -> str | None:
    """stdout of a command that succeeded within 5 s, else None (absent, failed or hung)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _affinity() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return None


def _open_files_limit() -> tuple[int, int]:
    """(soft, hard) RLIMIT_NOFILE; -1 is no limit, and what a system without rlimits (Windows) reports."""
    if sys.platform != "win32":
        import resource

        return resource.getrlimit(resource.RLIMIT_NOFILE)
    return -1, -1


def _sqlite_version() -> tuple[int, ...]:
    from lastro.db.sqlite import driver

    return tuple(driver().sqlite_version_info)


@dataclass(frozen=True)
class Machine:
    cpu_count: int  # what os.cpu_count() says, which WORKERS=auto counts
    affinity: int | None = None  # CPUs this process may run on
    cgroup_root: Path = Path("/sys/fs/cgroup")
    proc_cgroup: Path = Path("/proc/self/cgroup")
    meminfo: Path = Path("/proc/meminfo")
    mountinfo: Path = Path("/proc/self/mountinfo")
    disk_usage: Callable[[Path], tuple[int, int, int]] = shutil.disk_usage  # (total, used, free)
    open_files_limit: Callable[[], tuple[int, int]] = _open_files_limit
    sqlite_version: tuple[int, ...] = (0, 0, 0)
    environ: Mapping[str, str] = field(default_factory=dict)
    which: Callable[[str], str | None] = shutil.which
    run: Callable[[list[str]], str | None] = _run

    @classmethod
    def here(cls) -> Machine:
        return cls(
            cpu_count=os.cpu_count() or 1,
            affinity=_affinity(),
            sqlite_version=_sqlite_version(),
            environ=dict(os.environ),
        )

    def cgroup_dirs(self, controller: str) -> list[Path]:
        """Where this process's cgroup files may be, most specific first: its own cgroup (v2, then the v1
        controller's), then the roots a container sees as its own."""
        own: list[Path] = []
        for line in _read(self.proc_cgroup).splitlines():
            number, _, rest = line.partition(":")
            controllers, _, path = rest.partition(":")
            relative = path.lstrip("/")
            if number == "0" and not controllers:
                own.append(self.cgroup_root / relative)
            elif controller in controllers.split(","):
                own.append(self.cgroup_root / controllers / relative)
        return [*own, self.cgroup_root, self.cgroup_root / controller]

    def effective_cpus(self) -> float:
        """The CPUs this process can use: the count, the affinity mask and the container's quota."""
        found = [float(self.cpu_count)]
        if self.affinity:
            found.append(float(self.affinity))
        quota = cpu_quota(self)
        if quota is not None:
            found.append(quota)
        return min(found)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _fraction(quota: str, period: str) -> float | None:
    """quota / period; None for no quota (`max`, -1) and for what cannot be read."""
    if quota.isdigit() and period.isdigit() and int(period) > 0:
        return int(quota) / int(period)
    return None


def cpu_quota(machine: Machine) -> float | None:
    """CPUs the cgroup grants (quota / period), from v2 `cpu.max` or v1 `cpu.cfs_quota_us`; None if none."""
    for directory in machine.cgroup_dirs("cpu"):
        v2 = _read(directory / "cpu.max").split()
        if len(v2) == 2:
            return _fraction(*v2)
        quota = _read(directory / "cpu.cfs_quota_us").strip()
        if quota:
            return _fraction(quota, _read(directory / "cpu.cfs_period_us").strip())
    return None


def memory_limit(machine: Machine) -> int | None:
    """Bytes the cgroup may use, from v2 `memory.max` or v1 `memory.limit_in_bytes`; None if unlimited."""
    for directory in machine.cgroup_dirs("memory"):
        for name in ("memory.max", "memory.limit_in_bytes"):
            text = _read(directory / name).strip()
            if text == "max" or (text.isdigit() and int(text) >= UNLIMITED_BYTES):
                return None
            if text.isdigit():
                return int(text)
    return None


def memory_total(machine: Machine) -> int | None:
    """The machine's RAM in bytes (`MemTotal` in /proc/meminfo), or None where it cannot be read."""
    for line in _read(machine.meminfo).splitlines():
        name, _, value = line.partition(":")
        if name == "MemTotal" and value.split() and value.split()[0].isdigit():
            return int(value.split()[0]) * 1024
    return None


def memory_available(machine: Machine) -> float:
    """The smaller of RAM and the cgroup's limit, in bytes; infinite where neither is known."""
    known = [found for found in (memory_total(machine), memory_limit(machine)) if found is not None]
    return float(min(known)) if known else math.inf
