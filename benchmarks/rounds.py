"""Systems that are up together and take turns round by round, so that a change in the load of the shared
machine hits them alike; each figure is the median of the rounds."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import BIN, ROOT, Server, free_port
from benchmarks.orders.systems import WORKERS, orders_env
from benchmarks.orders.workloads import LASTRO_SCRIPTS, Plan, drive

__all__ = ["interleaved", "orders_system", "summary"]

logger = logging.getLogger("benchmarks.rounds")


def orders_system(
    workdir: Path,
    name: str,
    settings: dict[str, str],
    seeded: Path | str,
    seed: int,
    workload: str = "mixed",
    tree: Path = ROOT,
) -> tuple[Server, Path, dict[str, str]]:
    """The orders service of the source tree `tree` with `settings` over the usual: on SQLite, on a copy
    of the `seeded` database file; on PostgreSQL, on `seeded` when it is a URL (the system's own database,
    already seeded)."""
    directory = workdir / f"orders-{name.replace(' ', '-')}"
    directory.mkdir()
    if isinstance(seeded, str):
        url = seeded
    else:
        database = directory / "orders.db"
        with sqlite3.connect(seeded) as source, sqlite3.connect(database) as copy:
            source.backup(copy)
        url = f"sqlite:///{database}"
    port = free_port()
    env = orders_env(directory, port, url, WORKERS) | settings
    env["MIGRATIONS_DIR"] = str(tree / "examples" / "orders" / "migrations")  # checked against its own
    argv = [str(BIN / "lastro"), "serve", "examples.orders.app:create_app", "--factory"]
    server = Server(argv, port, "/health/ready", env, directory / "serve.log", root=tree)
    return server, LASTRO_SCRIPTS[workload], {"BENCH_MAX_ID": str(seed)}


def interleaved(
    systems: dict[str, tuple[Server, Path, dict[str, str]]],
    workload: str,
    connections: int,
    plan: Plan,
    rounds: int,
    before: Callable[[str, Server, dict[str, str]], None] | None = None,
    prepare: dict[str, Callable[[int], dict[str, str]]] | None = None,
) -> list[dict[str, Any]]:
    """Each system up, then `rounds` rounds of one wrk run each in turn; the medians per system.
    `prepare[name]`, when given, adds to the environment of each of that system's runs (`drive`)."""
    cells: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
    with contextlib.ExitStack() as stack:
        for name, (server, _, env) in systems.items():
            logger.info("starting %s", name)
            stack.enter_context(server)
            if before is not None:
                before(name, server, env)
        for n in range(rounds):
            logger.info("round %d of %d", n + 1, rounds)
            for name, (server, script, env) in systems.items():
                extra = (prepare or {}).get(name)
                cells[name].append(
                    drive(server, workload, script, connections, plan, env, prepare=extra, label=name)
                )
    return [summary(name, workload, connections, runs) for name, runs in cells.items()]


def summary(name: str, workload: str, connections: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def median(key: str) -> float:
        return float(statistics.median(run[key] for run in runs))

    return {
        "system": name,
        "workload": workload,
        "connections": connections,
        "rps": round(median("rps"), 1),
        "ok_rps": round(median("ok_rps"), 1),
        "p50_ms": round(median("p50_ms"), 2),
        "p99_ms": round(median("p99_ms"), 2),
        "cpu_ms_per_request": round(median("cpu_ms_per_request"), 4),
        "non_2xx": sum(run["non_2xx"] for run in runs),
        "statuses": [run["statuses"] for run in runs],
        "runs": runs,
    }
