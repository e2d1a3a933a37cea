"""What a backup of the orders service's SQLite database costs: time, size, and the writers' throughput.

    .venv/bin/python -m benchmarks.backups                 # 100,000 orders, 3 rounds x 10 s each way: ~3 min
    .venv/bin/python -m benchmarks.backups --smoke         # 500 orders, 1 round of 1 s, no warm-up

1. Offline, on the seeded database: SQLite's backup API in one step against `VACUUM INTO` (seconds, size),
   then `lastro.backup.create_backup` as a whole (copy, integrity_check, row counts, SHA-256, fsyncs) and
   `verify_backup`.
2. Under load: the orders service (2 workers) takes `lua/orders_write.lua` (100% POST /api/orders) from
   wrk; rounds without a backup alternate with rounds during which backups run back to back in a thread of
   this process (retention keeps one). Per kind of round: req/s, p50, p99, and the backups made meanwhile.

The database lives under `--dir` (a temporary directory by default), which must be on a real disk. The
report is markdown on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.orders.systems import fetch_token, migrate_and_seed, orders_server
from benchmarks.orders.workloads import LASTRO_SCRIPTS, Plan, drive
from benchmarks.servers import load_average, machine
from lastro.backup import create_backup, prune, verify_backup
from lastro.backup.manifest import sha256_of
from lastro.backup.sqlite_copy import check_copy
from lastro.db import sqlite
from lastro.settings import load_settings

__all__ = ["main"]

logger = logging.getLogger("benchmarks.backups")
WORKERS = 2


def _timed_copy(source: Path, destination: Path, how: str) -> tuple[float, int]:
    dbapi = sqlite.driver()
    started = time.perf_counter()
    reader = dbapi.connect(str(source))
    try:
        if how == "backup":
            writer = dbapi.connect(str(destination))
            reader.backup(writer, pages=-1)
            writer.close()
        else:
            reader.execute("VACUUM INTO ?", (str(destination),))
    finally:
        reader.close()
    seconds = time.perf_counter() - started
    size = destination.stat().st_size
    destination.unlink()
    return seconds, size


def offline(workdir: Path, database: Path, url: str) -> dict[str, Any]:
    found: dict[str, Any] = {"database_bytes": database.stat().st_size}
    for how in ("backup", "vacuum"):
        runs = [_timed_copy(database, workdir / f"copy-{how}.db", how) for _ in range(3)]
        found[how] = {"seconds": min(run[0] for run in runs), "bytes": runs[0][1]}
    settings = load_settings(DATABASE_URL=url, BACKUP_DIR=workdir / "backups-offline")
    made = create_backup(settings)
    copy = made.path / made.manifest.database_file
    started = time.perf_counter()
    check_copy(copy, count_rows=False)
    found["integrity_check_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    sha256_of(copy)
    found["sha256_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    verify_backup(made.path)
    found["create_backup"] = {"seconds": made.seconds, "bytes": made.size, "tables": made.manifest.tables}
    found["verify_seconds"] = time.perf_counter() - started
    return found


class BackupLoop:
    """Backups back to back in a thread until stopped; the seconds each took."""

    def __init__(self, url: str, directory: Path) -> None:
        self.settings = load_settings(DATABASE_URL=url, BACKUP_DIR=directory)
        self.seconds: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.seconds.append(create_backup(self.settings).seconds)
            prune(self.settings.BACKUP_DIR, 1, 1)

    def __enter__(self) -> BackupLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def under_load(workdir: Path, url: str, plan: Plan, rounds: int) -> dict[str, list[dict[str, Any]]]:
    cells: dict[str, list[dict[str, Any]]] = {"no backup": [], "backups running": []}
    with orders_server(workdir, url, WORKERS, workdir / "serve.log") as server:
        env = {"BENCH_TOKEN": fetch_token(server.url)}
        for number in range(rounds):
            order = ("no backup", "backups running") if number % 2 == 0 else ("backups running", "no backup")
            for kind in order:
                context = BackupLoop(url, workdir / "backups-load") if kind != "no backup" else None
                with context or contextlib.nullcontext():
                    cell = drive(server, "write", LASTRO_SCRIPTS["write"], plan.connections[0], plan, env=env)
                if context is not None:
                    cell["backups"] = context.seconds
                cells[kind].append(cell)
    return cells


def report(found: dict[str, Any], cells: dict[str, list[dict[str, Any]]], info: dict[str, Any]) -> str:
    mib = 1024 * 1024
    orders = found["create_backup"]["tables"].get("orders", 0)
    lines = [
        f"{orders:,} orders, database file {found['database_bytes'] / mib:.1f} MiB; "
        f"load before {info['load_before']}, after {info['load_after']}.",
        "",
        "| offline copy | seconds (best of 3) | size MiB |",
        "|---|---|---|",
        f"| backup API, one step | {found['backup']['seconds']:.3f} | {found['backup']['bytes'] / mib:.1f} |",
        f"| VACUUM INTO | {found['vacuum']['seconds']:.3f} | {found['vacuum']['bytes'] / mib:.1f} |",
        f"| `create_backup` (copy, integrity_check, counts, SHA-256, fsync) | "
        f"{found['create_backup']['seconds']:.3f} | {found['create_backup']['bytes'] / mib:.1f} |",
        f"| of which `PRAGMA integrity_check` of the copy | {found['integrity_check_seconds']:.3f} | |",
        f"| of which SHA-256 of the copy | {found['sha256_seconds']:.3f} | |",
        f"| `verify_backup` | {found['verify_seconds']:.3f} | |",
        "",
        f"{info['rounds']} rounds of {info['duration']:g} s each way, {info['connections']} connections, "
        f"{WORKERS} workers, 100% POST /api/orders.",
        "",
        "| rounds | req/s (median [min-max]) | p50 ms (median) | p99 ms (median) | non-2xx "
        "| backups made (s each, median) |",
        "|---|---|---|---|---|---|",
    ]
    for kind, runs in cells.items():
        rps = [run["rps"] for run in runs]
        backups = [seconds for run in runs for seconds in run.get("backups", [])]
        made = f"{len(backups)} ({statistics.median(backups):.2f})" if backups else "-"
        lines.append(
            f"| {kind} | {statistics.median(rps):,.0f} [{min(rps):,.0f}-{max(rps):,.0f}] | "
            f"{statistics.median(run['p50_ms'] for run in runs):.1f} | "
            f"{statistics.median(run['p99_ms'] for run in runs):.1f} | "
            f"{sum(run['non_2xx'] for run in runs)} | {made} |"
        )
    base = statistics.median(run["rps"] for run in cells["no backup"])
    during = statistics.median(run["rps"] for run in cells["backups running"])
    lines += ["", f"During backups / without: {during / base:.2f}x the req/s (medians)."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="500 orders, 1 round of 1 s at 20 connections")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="seconds of each measured wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seed", type=int, default=100_000, help="orders in the database")
    parser.add_argument("--dir", type=Path, default=None, help="where the database goes (a real disk)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install -y wrk")
    if args.smoke:
        args.rounds, args.duration, args.connections, args.seed = 1, 1, 20, 500
    warmup = 0 if args.smoke else 0.5
    plan = Plan(args.seed, (args.connections,), args.duration, warmup, 0, args.smoke, ("write",))
    info = vars(args) | {"load_before": load_average()}
    with tempfile.TemporaryDirectory(prefix="lastro-backups-", dir=args.dir) as directory:
        workdir = Path(directory)
        database = workdir / "orders.db"
        url = f"sqlite:///{database}"
        logger.info("seeded %d orders in %.1f s", args.seed, migrate_and_seed(url, args.seed))
        found = offline(workdir, database, url)
        cells = under_load(workdir, url, plan, args.rounds)
    info["load_after"] = load_average()
    details = machine()
    logger.info("SQLite %s, %s, %s cores", sqlite.version(), details["cpu"], details["cores"])
    sys.stdout.write(report(found, cells, info) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
