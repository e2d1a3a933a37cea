"""What the machine must hold for the workers: a safe SQLite, CPUs, memory, and file descriptors."""

from __future__ import annotations

import math

from lastro.db.engine import DatabaseOptions
from lastro.db.sqlite import check_version, is_affected
from lastro.errors import ConfigurationError
from lastro.ops.doctor.context import Context
from lastro.ops.doctor.findings import Finding, split_problem
from lastro.ops.doctor.machine import cpu_quota, memory_available, memory_limit
from lastro.workers import MIN_WORKERS, SQLITE_MAX_WORKERS

__all__ = ["TYPICAL_WORKER_MB", "check_memory", "check_open_files", "check_sqlite_version", "check_workers"]

MIB = 1024 * 1024
# The largest orders worker after the benchmark loads: 78 MB on SQLite, 94 MB on PostgreSQL
# (benchmarks/RESULTS.md, "Orders service against the seed baseline", "Per system"), rounded up.
TYPICAL_WORKER_MB = 100
# Descriptors a worker holds besides its connections: libraries, logs, pipes, the listening socket, the
# shared-memory files of the rate limits and metrics.
BASE_FILES = 64
SQLITE_FILES_PER_CONNECTION = 3  # the database, its WAL and its shared-memory index


def check_sqlite_version(context: Context) -> list[Finding]:
    """The WAL-reset bug, as `lastro serve` checks it (`lastro.db.sqlite.check_version`)."""
    version = context.machine.sqlite_version
    if not context.is_sqlite or not is_affected(version):
        return []
    shown = ".".join(str(part) for part in version)
    allowed = context.settings.SQLITE_ALLOW_UNSAFE_VERSION
    try:
        check_version(context.workers, allow_unsafe=allowed, version_info=version)
    except ConfigurationError as exc:
        return [Finding("lastro.E011", "error", *split_problem(str(exc)))]
    if context.workers > 1:  # allowed
        return [
            Finding(
                "lastro.W012",
                "warning",
                f"SQLite {shown} has the WAL-reset bug and SQLITE_ALLOW_UNSAFE_VERSION=true runs "
                f"{context.workers} workers on it: the database can be corrupted",
                "install pysqlite3>=0.6.1 (SQLite 3.51.3 or later), then unset SQLITE_ALLOW_UNSAFE_VERSION",
            )
        ]
    return [
        Finding(
            "lastro.I013",
            "info",
            f"SQLite {shown} has the WAL-reset bug: safe with the one worker configured, not with more",
            "install pysqlite3>=0.6.1 (SQLite 3.51.3 or later) before raising WORKERS",
        )
    ]


def check_workers(context: Context) -> list[Finding]:
    settings, machine, workers = context.settings, context.machine, context.workers
    cpus = machine.effective_cpus()
    usable = max(MIN_WORKERS, math.ceil(cpus))
    quota = cpu_quota(machine)
    grants = (
        "the container's CPU quota grants" if quota is not None and quota <= cpus else "this process may use"
    )
    available = f"the {cpus:g} CPUs {grants}"
    found = []
    if settings.WORKERS == "auto" and workers > usable:
        found.append(
            Finding(
                "lastro.W021",
                "warning",
                f"WORKERS=auto counts the host's {machine.cpu_count} CPUs and starts {workers} workers, "
                f"more than {available}",
                f"set WORKERS={usable}",
            )
        )
    elif workers > usable:
        found.append(
            Finding(
                "lastro.W020",
                "warning",
                f"WORKERS={workers} is more than {available}: each worker is one event loop on one core, "
                "the extra ones only add context switches",
                f"set WORKERS={usable}, or WORKERS=auto",
            )
        )
    if context.is_sqlite and workers > SQLITE_MAX_WORKERS:
        found.append(
            Finding(
                "lastro.W022",
                "warning",
                f"WORKERS={workers} on SQLite: writes are serialised and reads gain nothing past "
                f"{SQLITE_MAX_WORKERS} workers (benchmarks/RESULTS.md, SQLite worker sweep)",
                f"set WORKERS={SQLITE_MAX_WORKERS} or fewer, or move to PostgreSQL",
            )
        )
    return found


def check_memory(context: Context) -> list[Finding]:
    settings, workers = context.settings, context.workers
    available = memory_available(context.machine)
    if math.isinf(available):
        return []
    per_worker = settings.MAX_WORKER_RSS_MB or TYPICAL_WORKER_MB
    needed = per_worker * workers * MIB
    if needed <= available:
        return []
    where = "the container's memory limit" if memory_limit(context.machine) == available else "RAM"
    fits = max(1, int(available // (per_worker * MIB)))
    if settings.MAX_WORKER_RSS_MB:
        return [
            Finding(
                "lastro.E030",
                "error",
                f"{workers} workers x MAX_WORKER_RSS_MB={per_worker} is {needed // MIB} MiB, more than "
                f"{where} ({int(available) // MIB} MiB): the kernel kills workers before they are recycled",
                f"set WORKERS={fits} or fewer, or a lower MAX_WORKER_RSS_MB, or give the service more memory",
            )
        ]
    return [
        Finding(
            "lastro.W031",
            "warning",
            f"{workers} workers x about {per_worker} MiB each (a typical worker; MAX_WORKER_RSS_MB is unset) "
            f"is {needed // MIB} MiB, more than {where} ({int(available) // MIB} MiB)",
            f"set WORKERS={fits} or fewer, and MAX_WORKER_RSS_MB to what one worker may use, e.g. "
            f"MAX_WORKER_RSS_MB={int(available // MIB) // max(workers, 1)}",
        )
    ]


def files_per_worker(context: Context) -> int:
    """Descriptors one worker may hold: its connections, its database connections, and the rest.

    The limit is per process, and every worker is one, so it is compared with one worker's need."""
    settings = context.settings
    if context.is_sqlite:
        pool = (settings.DB_POOL_SIZE or 2) + (
            8 if settings.DB_MAX_OVERFLOW is None else settings.DB_MAX_OVERFLOW
        )
        database = pool * SQLITE_FILES_PER_CONNECTION
    else:
        options = DatabaseOptions.from_settings(settings, context.workers)
        size, overflow = options.postgres_pool()
        database = size + overflow + 1  # + the health probe's connection
    return settings.MAX_CONNECTIONS + database + BASE_FILES


def check_open_files(context: Context) -> list[Finding]:
    soft, hard = context.machine.open_files_limit()
    needed = files_per_worker(context)
    if soft < 0 or soft >= needed:  # RLIM_INFINITY is -1
        return []
    can = "" if hard < 0 or hard >= needed else f" (the hard limit is {hard}: raise it too)"
    return [
        Finding(
            "lastro.W080",
            "warning",
            f"ulimit -n is {soft}, and a worker may need {needed} descriptors (MAX_CONNECTIONS="
            f"{context.settings.MAX_CONNECTIONS}, its database connections and {BASE_FILES} more): past it "
            "new connections fail with 'Too many open files'",
            f"raise the limit to {needed} or more{can}: LimitNOFILE={needed} in the systemd unit, ulimits: "
            f"nofile in compose, `ulimit -n {needed}` in a shell; or lower MAX_CONNECTIONS",
        )
    ]
