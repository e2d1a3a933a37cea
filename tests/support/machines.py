"""Machines of the tests' own for `lastro doctor`: a cgroup tree, a meminfo and a mount table written
under a temporary directory, and the facts no file holds (CPUs, free space, ulimit) given as values."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lastro.ops.doctor.machine import Machine
from lastro.settings import Settings, load_settings

GIB = 1024**3
LOCAL = [("/", "ext4", "/dev/sda1")]


def mountinfo_line(number: int, point: str, fstype: str, source: str) -> str:
    escaped = point.replace(" ", "\\040")
    return f"{number} 1 0:{number} / {escaped} rw,relatime shared:{number} - {fstype} {source} rw"


def fake_machine(
    root: Path,
    *,
    cpus: int = 4,
    affinity: int | None = None,
    cgroup: Mapping[str, str] | None = None,
    proc_cgroup: str = "0::/\n",
    mem_total: int = 16 * GIB,
    mounts: list[tuple[str, str, str]] = LOCAL,
    free: int = 100 * GIB,
    open_files: tuple[int, int] = (1 << 20, 1 << 20),
    sqlite_version: tuple[int, ...] = (3, 51, 3),
    environ: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = lambda _name: None,
    run: Callable[[list[str]], str | None] = lambda _command: None,
) -> Machine:
    """`cgroup` maps file paths under the cgroup root (`cpu.max`, `cpu/cpu.cfs_quota_us`) to contents."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup").mkdir(exist_ok=True)
    for name, text in (cgroup or {}).items():
        (root / "cgroup" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "cgroup" / name).write_text(text)
    (root / "proc-cgroup").write_text(proc_cgroup)
    (root / "meminfo").write_text(f"MemTotal:       {mem_total // 1024} kB\nMemFree:        1024 kB\n")
    lines = [mountinfo_line(number, *mount) for number, mount in enumerate(mounts, start=20)]
    (root / "mountinfo").write_text("\n".join(lines) + "\n")
    return Machine(
        cpu_count=cpus,
        affinity=affinity,
        cgroup_root=root / "cgroup",
        proc_cgroup=root / "proc-cgroup",
        meminfo=root / "meminfo",
        mountinfo=root / "mountinfo",
        disk_usage=lambda _path: (free * 2, free, free),
        open_files_limit=lambda: open_files,
        sqlite_version=sqlite_version,
        environ=environ or {},
        which=which,
        run=run,
    )


def deploy_settings(**values: Any) -> Settings:
    """Production settings with nothing for `lastro doctor` to say on a `fake_machine()`."""
    defaults: dict[str, Any] = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "HEALTH_TOKEN": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "api.example.com",
        "WORKERS": "2",
        "BACKUP_EVERY": "86400",
        "BACKUP_DIR": "/backups/orders",
        "DATABASE_URL": "sqlite:////srv/orders/orders.db",
    }
    return load_settings(**{**defaults, **values})
