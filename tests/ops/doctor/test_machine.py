"""The machine's facts: cgroup CPU quota and memory limit (v1 and v2), RAM, the mount table."""

from __future__ import annotations

from pathlib import Path

import pytest

from lastro.ops.doctor.machine import Machine, cpu_quota, memory_limit, memory_total
from lastro.ops.doctor.mounts import mount_of, parse_mountinfo
from tests.support.machines import GIB, fake_machine


@pytest.mark.parametrize(
    ("files", "proc", "quota"),
    [
        ({"cpu.max": "max 100000\n"}, "0::/\n", None),
        ({"cpu.max": "50000 100000\n"}, "0::/\n", 0.5),
        ({"a/b/cpu.max": "300000 100000\n", "cpu.max": "max 100000\n"}, "0::/a/b\n", 3.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, "3:cpu:/\n", None),
        (
            {"cpu,cpuacct/cpu.cfs_quota_us": "150000", "cpu,cpuacct/cpu.cfs_period_us": "100000"},
            "2:cpu,cpuacct:/",
            1.5,
        ),
        ({}, "0::/\n", None),
    ],
    ids=["v2-max", "v2-half", "v2-own-cgroup-first", "v1-none", "v1-quota", "no-cgroup"],
)
def test_the_cpu_quota(tmp_path: Path, files: dict[str, str], proc: str, quota: float | None) -> None:
    """quota / period, from the process's own cgroup before the root; `max` and -1 are no quota."""
    assert cpu_quota(fake_machine(tmp_path, cgroup=files, proc_cgroup=proc)) == quota


@pytest.mark.parametrize(
    ("files", "proc", "limit"),
    [
        ({"memory.max": "max\n"}, "0::/\n", None),
        ({"memory.max": "536870912\n"}, "0::/\n", 512 * 1024**2),
        ({"memory/memory.limit_in_bytes": "9223372036854771712\n"}, "9:memory:/\n", None),
        ({"memory/x/memory.limit_in_bytes": f"{GIB}\n"}, "9:memory:/x\n", GIB),
    ],
    ids=["v2-max", "v2-limit", "v1-unlimited", "v1-own-cgroup"],
)
def test_the_memory_limit(tmp_path: Path, files: dict[str, str], proc: str, limit: int | None) -> None:
    """memory.max or memory.limit_in_bytes; `max` and v1's huge value are no limit."""
    assert memory_limit(fake_machine(tmp_path, cgroup=files, proc_cgroup=proc)) == limit


def test_ram_is_memtotal(tmp_path: Path) -> None:
    """MemTotal in kB, as bytes; a machine without /proc/meminfo has none."""
    assert memory_total(fake_machine(tmp_path, mem_total=8 * GIB)) == 8 * GIB
    assert memory_total(Machine(cpu_count=1, meminfo=tmp_path / "missing")) is None


def test_effective_cpus_is_the_smallest_bound(tmp_path: Path) -> None:
    """The count, the affinity mask and the quota: the smallest wins."""
    assert (
        fake_machine(tmp_path, cpus=16, affinity=8, cgroup={"cpu.max": "250000 100000"}).effective_cpus()
        == 2.5
    )
    assert fake_machine(tmp_path / "b", cpus=16, affinity=3).effective_cpus() == 3


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 27 0:50 / /srv rw,relatime shared:5 master:1 - nfs4 nas:/srv rw,vers=4.2
41 40 8:17 / /srv/local\\040disk rw - xfs /dev/sdb1 rw
garbage line
42 27 0:51 / /home/me/remote rw,nosuid - fuse.sshfs me@host:/ rw
"""


@pytest.mark.parametrize(
    ("path", "fstype"),
    [
        ("/var/lib/app.db", "ext4"),
        ("/srv/app.db", "nfs4"),
        ("/srv/local disk/app.db", "xfs"),
        ("/srv/local diskette/app.db", "nfs4"),
        ("/home/me/remote/x.db", "fuse.sshfs"),
    ],
)
def test_the_longest_mount_point_holds_a_path(path: str, fstype: str) -> None:
    """Escaped spaces, optional fields and garbage lines are read; a sibling prefix is no parent."""
    mount = mount_of(Path(path), parse_mountinfo(MOUNTINFO))
    assert mount is not None
    assert mount.fstype == fstype


def test_no_mount_table_holds_nothing() -> None:
    """An empty table holds no path."""
    assert mount_of(Path("/x"), parse_mountinfo("")) is None


@pytest.mark.parametrize(
    "files",
    [{"cpu.max": "lots 100000\n", "memory.max": "plenty\n"}, {"cpu.max": "100000 0\n", "memory.max": "\n"}],
    ids=["words", "zero-period"],
)
def test_unreadable_cgroup_files_are_no_limit(tmp_path: Path, files: dict[str, str]) -> None:
    """Garbage in cpu.max or memory.max is no quota and no limit, never a crash."""
    machine = fake_machine(tmp_path, cgroup=files)
    assert (cpu_quota(machine), memory_limit(machine)) == (None, None)


def test_garbage_meminfo_is_no_ram_figure(tmp_path: Path) -> None:
    """A MemTotal line without a number reads as unknown."""
    (tmp_path / "meminfo").write_text("MemTotal: lots\n")
    assert memory_total(Machine(cpu_count=1, meminfo=tmp_path / "meminfo")) is None
