"""The workloads of the orders benchmark: which wrk script drives each, the plan of a run, and one measured
cell (warm-up, wrk, then the system's log and its workers' CPU time).

The systems of a group take turns cell by cell (`measure_interleaved`), so that a change in the load of
the shared machine hits them alike rather than one system's whole run.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from benchmarks.harness import ROOT, Server, cpu_seconds
from benchmarks.servers import Load, parse_wrk, wrk_command, wrk_script
from examples.orders.schema import orders
from lastro.db.engine import Database

logger = logging.getLogger("benchmarks.orders")

LUA = ROOT / "benchmarks" / "lua"
SEED = 100_000
CONNECTIONS = (20, 50, 200)
WORKLOADS = ("get", "list", "mixed", "write", "patch")
# Lines of a log that report a locked database: the baseline prints DBLOCKED (gave up, 500) and RETRY (tried
# again after "database is locked"); lastro logs "database retry" and would name the error.
LOCKED = re.compile(rb"DBLOCKED|^RETRY \d|database retry|database is locked", re.MULTILINE)

# The orders API's translations (`orders_*.lua`) of the scripts that drive the baseline (`baseline.py`).
LASTRO_SCRIPTS = {workload: LUA / f"orders_{workload}.lua" for workload in WORKLOADS}


@dataclass(frozen=True)
class Plan:
    seed: int
    connections: tuple[int, ...]
    seconds: float
    warmup: float
    profile_seconds: float
    smoke: bool
    workloads: tuple[str, ...] = WORKLOADS
    pause: float = 0.3  # seconds between runs: queued requests finish, their log lines land


@dataclass
class Running:
    """A started system: its server, the script of each workload, and what its runs need."""

    name: str
    kind: str
    server: Server
    scripts: dict[str, Path]
    env: dict[str, str] = field(default_factory=dict)
    prepare: dict[str, Callable[[int], dict[str, str]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    cells: list[dict[str, Any]] = field(default_factory=list)
    after_start: Callable[[Running], None] | None = None


def run_wrk(url: str, connections: int, seconds: float, script: Path, env: dict[str, str]) -> Load:
    with wrk_script(script) as full:
        argv = wrk_command(url, connections, seconds, full)
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 30, check=True, env={**os.environ, **env}
        )
    return parse_wrk(done.stdout)


ACCESS_STATUS = re.compile(rb'^.*"lastro\.access".*$', re.MULTILINE)
STATUS = re.compile(rb'"status": (\d{3})')


def scan_log(log: Path, offset: int) -> tuple[int, dict[str, int]]:
    """From `offset` on: the lines reporting a locked database, and lastro's access lines by non-2xx status
    (the baseline writes no access log)."""
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read()
    statuses: Counter[str] = Counter()
    for line in ACCESS_STATUS.findall(text):
        found = STATUS.search(line)
        if found and not found.group(1).startswith(b"2"):
            statuses[found.group(1).decode()] += 1
    return len(LOCKED.findall(text)), dict(sorted(statuses.items()))


def drive(
    server: Server,
    workload: str,
    script: Path,
    connections: int,
    plan: Plan,
    env: dict[str, str] | None = None,
    prepare: Callable[[int], dict[str, str]] | None = None,
    label: str = "",
) -> dict[str, Any]:
    """Warm up, then one measured wrk run; `prepare(connections)` gives extra environment for each run."""
    if plan.warmup > 0:
        run_wrk(
            server.url,
            connections,
            plan.warmup,
            script,
            (env or {}) | (prepare(connections) if prepare else {}),
        )
        time.sleep(plan.pause)
    run_env = (env or {}) | (prepare(connections) if prepare else {})
    offset = server.log.stat().st_size
    workers = server.workers()
    cpu_before = cpu_seconds(workers)
    load = run_wrk(server.url, connections, plan.seconds, script, run_env)
    cpu = cpu_seconds(workers) - cpu_before
    time.sleep(plan.pause)
    locked, statuses = scan_log(server.log, offset)
    cpu_ms = 1000 * cpu / load.requests if load.requests else 0.0
    logger.info(
        "  %-24s %-6s c=%-3d %8.0f req/s  p50 %7.2f ms  p99 %8.2f ms  non-2xx %d %s  socket errors %d  "
        "locked %d  worker CPU %.3f ms/request",
        label,
        workload,
        connections,
        load.rps,
        load.p50_ms,
        load.p99_ms,
        load.non_2xx,
        statuses or "",
        load.socket_errors,
        locked,
        cpu_ms,
    )
    return {
        "workload": workload,
        "connections": connections,
        "locked": locked,
        "statuses": statuses,
        "worker_cpu_s": round(cpu, 2),
        "cpu_ms_per_request": round(cpu_ms, 4),
    } | load.as_dict()


def measure_interleaved(systems: Sequence[Running], plan: Plan) -> None:
    """Every (workload, connections) cell on each system in turn, rather than system after system: a
    change in the load of the shared machine then hits all systems alike, not one system's whole run.
    --smoke runs a cell on every system at once: its figures then only show that each script works."""
    workloads = list(dict.fromkeys(w for system in systems for w in system.scripts))
    for workload in workloads:
        for c in plan.connections:
            turn = [system for system in systems if workload in system.scripts]

            def cell(system: Running, workload: str = workload, c: int = c) -> dict[str, Any]:
                return drive(
                    system.server,
                    workload,
                    system.scripts[workload],
                    c,
                    plan,
                    system.env,
                    system.prepare.get(workload),
                    label=system.name,
                )

            if plan.smoke and len(turn) > 1:
                with ThreadPoolExecutor(len(turn)) as pool:
                    cells = list(pool.map(cell, turn))
            else:
                cells = [cell(system) for system in turn]
            for system, measured in zip(turn, cells, strict=True):
                system.cells.append(measured)


class PatchTargets:
    """For each PATCH run, orders no run has touched (version 1) that may still change, written to a file
    for `orders_patch.lua`: one id a line, a few more than connections."""

    def __init__(self, url: str, path: Path) -> None:
        self.database = Database(url)
        self.path = path
        self.after = 0

    def __call__(self, connections: int) -> dict[str, str]:
        changeable = ("received", "in_production", "ready")
        query = (
            select(orders.c.id)
            .where(orders.c.id > self.after, orders.c.version == 1, orders.c.status.in_(changeable))
            .order_by(orders.c.id)
            .limit(connections + 50)
        )
        with self.database.engine.connect() as connection:
            ids = list(connection.execute(query).scalars())
        if len(ids) <= connections:
            logger.warning("only %d orders left to PATCH for %d connections", len(ids), connections)
        self.after = ids[-1] if ids else self.after
        self.path.write_text("".join(f"{order_id}\n" for order_id in ids))
        return {"BENCH_IDS_FILE": str(self.path)}

    def close(self) -> None:
        self.database.engine.dispose()
