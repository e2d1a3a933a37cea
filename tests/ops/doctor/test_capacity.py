"""The capacity checks: SQLite's WAL-reset bug, workers against CPUs and quotas, memory, open files."""

from __future__ import annotations

import pytest

from tests.ops.doctor.conftest import Doctor
from tests.support.machines import GIB

MIB = 1024**2
OLD_SQLITE = (3, 45, 1)
POSTGRES = "postgresql://app@db:5432/app"


def test_an_affected_sqlite_with_workers_is_the_refusal_of_serve(doctor: Doctor) -> None:
    """SQLite 3.45.1 with 2 workers: lastro.E011, the message `lastro serve` would refuse with."""
    finding = doctor.one("lastro.E011", sqlite_version=OLD_SQLITE)
    assert "SQLite 3.45.1" in finding.message
    assert "pysqlite3" in finding.fix
    assert "SQLITE_ALLOW_UNSAFE_VERSION" in finding.fix


def test_an_affected_sqlite_allowed_anyway_is_a_warning(doctor: Doctor) -> None:
    """SQLITE_ALLOW_UNSAFE_VERSION=true turns the refusal into lastro.W012."""
    assert doctor.ids({"SQLITE_ALLOW_UNSAFE_VERSION": "true"}, sqlite_version=OLD_SQLITE) == ["lastro.W012"]


def test_an_affected_sqlite_with_one_worker_is_information(doctor: Doctor) -> None:
    """One worker is safe on it: lastro.I013 only."""
    assert doctor.ids({"WORKERS": "1"}, sqlite_version=OLD_SQLITE) == ["lastro.I013"]


@pytest.mark.parametrize(
    ("settings", "version"),
    [({}, (3, 51, 3)), ({}, (3, 52, 0)), ({"DATABASE_URL": POSTGRES}, OLD_SQLITE)],
    ids=["fixed", "newer", "postgresql"],
)
def test_a_fixed_sqlite_or_postgresql_is_not_reported(
    doctor: Doctor, settings: dict[str, str], version: tuple[int, ...]
) -> None:
    """3.51.3 and later, or no SQLite at all: nothing."""
    assert doctor.findings(settings, sqlite_version=version) == []


def test_more_workers_than_cpus_is_a_warning(doctor: Doctor) -> None:
    """WORKERS=8 on 4 CPUs: lastro.W020, fixed with the CPU count."""
    finding = doctor.one("lastro.W020", {"WORKERS": "8", "DATABASE_URL": POSTGRES}, cpus=4)
    assert finding.fix.startswith("set WORKERS=4")


@pytest.mark.parametrize(
    ("cgroup", "proc_cgroup"),
    [
        ({"cpu.max": "200000 100000\n"}, "0::/\n"),
        ({"system.slice/app.service/cpu.max": "150000 100000\n"}, "0::/system.slice/app.service\n"),
        (
            {"cpu,cpuacct/cpu.cfs_quota_us": "200000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
            "4:cpu,cpuacct:/\n",
        ),
        (
            {"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"},
            "4:cpu,cpuacct:/docker/abc\n",
        ),
    ],
    ids=["v2", "v2-own-cgroup", "v1", "v1-container-root"],
)
def test_workers_are_weighed_against_the_cpu_quota(
    doctor: Doctor, cgroup: dict[str, str], proc_cgroup: str
) -> None:
    """A quota of 1.5-2 CPUs on a 16-CPU host makes WORKERS=6 too many, and the finding says why."""
    finding = doctor.one(
        "lastro.W020",
        {"WORKERS": "6", "DATABASE_URL": POSTGRES},
        cpus=16,
        cgroup=cgroup,
        proc_cgroup=proc_cgroup,
    )
    assert "quota" in finding.message
    assert finding.fix.startswith("set WORKERS=2")


def test_workers_are_weighed_against_the_affinity_mask(doctor: Doctor) -> None:
    """taskset to 2 of 16 CPUs: WORKERS=6 is too many."""
    assert "lastro.W020" in doctor.ids({"WORKERS": "6", "DATABASE_URL": POSTGRES}, cpus=16, affinity=2)


def test_auto_on_a_host_larger_than_the_quota_is_a_warning(doctor: Doctor) -> None:
    """WORKERS=auto counts the host's 32 CPUs, not the container's 2: lastro.W021, fixed with WORKERS=2."""
    finding = doctor.one(
        "lastro.W021",
        {"WORKERS": "auto", "DATABASE_URL": POSTGRES},
        cpus=32,
        cgroup={"cpu.max": "200000 100000"},
    )
    assert "32 CPUs" in finding.message
    assert finding.fix == "set WORKERS=2"


@pytest.mark.parametrize(
    ("settings", "machine"),
    [
        ({"WORKERS": "auto", "DATABASE_URL": POSTGRES}, {"cpus": 8, "cgroup": {"cpu.max": "max 100000"}}),
        ({"WORKERS": "2"}, {"cpus": 1}),
        ({"WORKERS": "4", "DATABASE_URL": POSTGRES}, {"cpus": 16, "cgroup": {"cpu.max": "400000 100000"}}),
    ],
    ids=["auto-no-quota", "the-floor-of-two", "within-quota"],
)
def test_workers_within_the_cpus_are_not_reported(
    doctor: Doctor, settings: dict[str, str], machine: dict[str, object]
) -> None:
    """No quota, the two-worker floor on one CPU, or a count inside the quota: nothing."""
    assert doctor.findings(settings, **machine) == []


def test_too_many_sqlite_workers_is_a_warning(doctor: Doctor) -> None:
    """WORKERS=6 on SQLite (8 CPUs): lastro.W022, fixed with the SQLite ceiling of 4."""
    assert doctor.one("lastro.W022", {"WORKERS": "6"}, cpus=8).fix.startswith("set WORKERS=4")


def test_capped_workers_past_the_container_limit_is_an_error(doctor: Doctor) -> None:
    """4 workers x MAX_WORKER_RSS_MB=512 in a 1 GiB container: lastro.E030 names the limit."""
    finding = doctor.one(
        "lastro.E030", {"WORKERS": "4", "MAX_WORKER_RSS_MB": "512"}, cgroup={"memory.max": f"{GIB}\n"}
    )
    assert "container's memory limit (1024 MiB)" in finding.message
    assert finding.fix.startswith("set WORKERS=2 or fewer")


def test_typical_workers_past_the_ram_is_a_warning(doctor: Doctor) -> None:
    """4 workers of a typical 100 MiB on a 256 MiB machine, no cap: lastro.W031 names the RAM."""
    finding = doctor.one("lastro.W031", {"WORKERS": "4"}, mem_total=256 * MIB)
    assert "more than RAM (256 MiB)" in finding.message
    assert "MAX_WORKER_RSS_MB=" in finding.fix


def test_a_v1_memory_limit_counts_too(doctor: Doctor) -> None:
    """cgroup v1's memory.limit_in_bytes is the limit when set."""
    cgroup = {"memory/memory.limit_in_bytes": f"{300 * MIB}\n"}
    assert "lastro.W031" in doctor.ids({"WORKERS": "4"}, cgroup=cgroup, proc_cgroup="5:memory:/\n")


@pytest.mark.parametrize(
    "cgroup",
    [{}, {"memory.max": "max\n"}, {"memory/memory.limit_in_bytes": "9223372036854771712\n"}],
    ids=["none", "v2-max", "v1-unlimited"],
)
def test_enough_memory_is_not_reported(doctor: Doctor, cgroup: dict[str, str]) -> None:
    """4 capped workers in 16 GiB of RAM without a (finite) cgroup limit: nothing."""
    assert doctor.findings({"WORKERS": "4", "MAX_WORKER_RSS_MB": "512"}, cgroup=cgroup) == []


def test_a_low_open_files_limit_is_a_warning(doctor: Doctor) -> None:
    """ulimit -n 1024 against MAX_CONNECTIONS=2048: lastro.W080, fixed with LimitNOFILE."""
    finding = doctor.one("lastro.W080", open_files=(1024, 1 << 20))
    assert "ulimit -n is 1024" in finding.message
    assert "LimitNOFILE=" in finding.fix
    assert "hard limit" not in finding.fix


def test_a_low_hard_limit_is_named(doctor: Doctor) -> None:
    """When the hard limit is low too, the fix says to raise it."""
    assert "the hard limit is 2000" in doctor.one("lastro.W080", open_files=(1024, 2000)).fix


def test_the_postgres_pool_counts_against_the_limit(doctor: Doctor) -> None:
    """MAX_CONNECTIONS=900 fits 1000 descriptors on SQLite, not with a PostgreSQL pool of 40."""
    limit = (1000, 1000)
    assert doctor.findings({"MAX_CONNECTIONS": "900"}, open_files=limit) == []
    postgres = {
        "MAX_CONNECTIONS": "900",
        "DATABASE_URL": POSTGRES,
        "DB_POOL_SIZE": "20",
        "DB_MAX_OVERFLOW": "20",
    }
    assert doctor.ids(postgres, open_files=limit) == ["lastro.W080"]


def test_an_unlimited_open_files_limit_is_fine(doctor: Doctor) -> None:
    """RLIM_INFINITY (-1): nothing."""
    assert doctor.findings(open_files=(-1, -1)) == []
