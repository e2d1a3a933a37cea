"""The orders service on lastro against the seed-style baseline: every system, every workload, one run.

    .venv/bin/python -m benchmarks.run --json benchmarks/orders.json --chart benchmarks/orders.png
    .venv/bin/python -m benchmarks.run --smoke          # every part, tiny seed, 1 s loads: about 30 s
    .venv/bin/python -m benchmarks.run --report benchmarks/orders.json   # the tables again

All on loopback; every server starts on a free port, is stopped with SIGTERM, and every load is a `wrk`
run bounded in time. The systems, each with 2 workers:

- the limit: a raw ASGI and a FastAPI hello world under `lastro serve`, and the FastAPI hello wrapped in
  `lastro.create_app` (`benchmarks/apps/hello_lastro.py`) to price lastro's middleware stack;
- the baseline: `seed_app.py` from the shared baseline directory, as its README runs it (gunicorn + uvicorn
  workers, SQLite), in its own virtual environment under ~/.cache/lastro-bench;
- the ceiling: `ceiling_app.py` from the same directory, the same API hand-tuned for speed with no features,
  started the same way: lastro reports each workload as a ratio to the baseline and to the ceiling;
- the orders service (`examples/orders`) under `lastro serve`, on SQLite and on PostgreSQL, at
  LOG_LEVEL=info with JSON logs to a file: the access line per request is part of what lastro costs.

Each database gets the same 100k orders. Five workloads (GET by id, list by status, mixed 70/20/10, POST
only, PATCH with If-Match) run at 20, 50 and 200 connections. The systems of a group are up together and
take turns cell by cell, so that a change in the load of the shared machine hits them alike (--smoke
runs each cell on all of them at once: it only shows that every script works). Per run:
req/s and 2xx/s, p50, p99, non-2xx (by status, from lastro's access log), socket errors, the lines of the
system's log that report a locked database, and the CPU time of its workers per request, the figure that
other load on the machine disturbs least. Per system: worker RSS after the loads and the time from process
start to ready. Then a py-spy profile of one lastro SQLite worker under the mixed load, GET by id and
write-only at 50 connections, and of one PostgreSQL worker under write-only and GET by id (with
BENCH_PROFILE_DIR set, py-spy's raw stacks are kept there; --smoke profiles the first of each), and the
orders service once with 4 workers (start to ready).

This module is the command line and the order of the parts; the parts live in `benchmarks/orders/`: the
systems (`systems.py`, `baseline.py`), the workloads and how a cell is measured (`workloads.py`), the
profile (`profile.py`) and the report (`report.py`).
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import ROOT, Server
from benchmarks.orders.baseline import (
    BASELINE_DIR,
    BASELINE_VENV,
    COMPARATORS,
    ensure_baseline_venv,
    prepare_baseline,
)
from benchmarks.orders.profile import profile_worker
from benchmarks.orders.report import report
from benchmarks.orders.systems import (
    START_WORKERS,
    WORKERS,
    finish,
    launch,
    migrate_and_seed,
    postgres_database,
    prepare_lastro,
    prepare_limit,
    start_with_workers,
)
from benchmarks.orders.workloads import CONNECTIONS, SEED, WORKLOADS, Plan, measure_interleaved
from benchmarks.servers import _version, load_average, machine
from lastro.db.engine import Database

logger = logging.getLogger("benchmarks.run")


def _machine() -> dict[str, Any]:
    found = machine()
    found["wrk"] = found["wrk"].split(" Copyright")[0]
    wanted = {"fastapi", "uvicorn", "gunicorn", "sqlalchemy"}
    found["baseline_versions"] = {
        name: version
        for name, _, version in (
            info.name.removesuffix(".dist-info").partition("-")
            for info in BASELINE_VENV.glob("lib/python*/site-packages/*.dist-info")
        )
        if name.lower() in wanted
    }
    found["versions"]["matplotlib"] = _version("matplotlib")
    found["versions"]["psycopg"] = _version("psycopg")
    found["versions"]["sqlalchemy"] = _version("SQLAlchemy")
    found["sqlite_lastro"] = Database("sqlite://").version
    return found


PARTS = ("limit", "baseline", "ceiling", "sqlite", "start", "postgres")


# The profiles each lastro system gets after the measured runs: workload, and the key of its summary.
PROFILES = {
    "lastro SQLite": (("mixed", "profile"), ("get", "profile_get"), ("write", "profile_write")),
    "lastro PostgreSQL": (("write", "profile_write"), ("get", "profile_get")),
}


def run(plan: Plan, parts: Sequence[str] = PARTS) -> dict[str, Any]:
    started = time.monotonic()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": _machine(),
        "seed": plan.seed,
        "connections": list(plan.connections),
        "workloads": list(plan.workloads),
        "parts": list(parts),
        "seconds": plan.seconds,
        "warmup": plan.warmup,
        "workers": WORKERS,
        "load_before": load_average(),
        "systems": {},
    }
    with tempfile.TemporaryDirectory(prefix="lastro-bench-orders-") as tmp:
        workdir = Path(tmp)
        sqlite_url = f"sqlite:///{workdir / 'orders.db'}"
        if "limit" in parts:
            with contextlib.ExitStack() as stack:
                limit = prepare_limit(workdir, plan)
                launch(stack, limit, parallel=plan.smoke)
                measure_interleaved(limit, plan)
                results["systems"].update({system.name: finish(system) for system in limit})
        with contextlib.ExitStack() as stack:
            systems = []
            systems += [prepare_baseline(workdir, plan, name) for name in COMPARATORS if name in parts]
            if "sqlite" in parts:
                systems.append(prepare_lastro(stack, "lastro SQLite", workdir, sqlite_url, plan))
            if "postgres" in parts:
                url = stack.enter_context(postgres_database())
                systems.append(prepare_lastro(stack, "lastro PostgreSQL", workdir, url, plan))
            launch(stack, systems, parallel=plan.smoke)
            measure_interleaved(systems, plan)
            results["systems"].update({system.name: finish(system) for system in systems})
            # Its own run at the end, the other systems idle: sampling slows the worker.
            for system in systems:
                profiles = PROFILES.get(system.name, ())
                for workload, key in profiles[:1] if plan.smoke else profiles:  # --smoke: that each works
                    if workload in plan.workloads:
                        profile = profile_worker(system.server, system.env, plan, workload)
                        results["systems"][system.name][key] = profile | {"system": system.name}
        if "start" in parts:
            if "sqlite" not in parts:
                migrate_and_seed(sqlite_url, plan.seed)
            results["start_workers"] = start_with_workers(workdir, sqlite_url, START_WORKERS)
    results["load_after"] = load_average()
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    return results


def compile_tree() -> None:
    """The bytecode of lastro and the examples, as an install has it: where the environment sets
    PYTHONDONTWRITEBYTECODE (lastro's Docker image does), every start would compile this tree again."""
    for package in ("lastro", "examples"):
        compileall.compile_dir(ROOT / package, quiet=1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--smoke", action="store_true", help="every part, 200 orders, 1 s loads, 20 connections"
    )
    parser.add_argument("--duration", type=float, default=5, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=float, default=1, help="seconds of wrk before each measured run")
    parser.add_argument("--seed", type=int, default=SEED, help="orders in each database")
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    parser.add_argument("--chart", type=Path, default=None, help="draw the PNG chart here (matplotlib)")
    parser.add_argument("--report", type=Path, default=None, help="only print the report of a --json file")
    parser.add_argument("--no-postgres", action="store_true", help="leave out the PostgreSQL system")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)} (default: all)"
    )
    parser.add_argument("--connections", default=None, help="comma-separated (default: 20,50,200)")
    parser.add_argument("--workloads", default=None, help=f"comma-separated (default: {','.join(WORKLOADS)})")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.report:
        sys.stdout.write(report(json.loads(args.report.read_text())) + "\n")
        return 0
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install -y wrk")
    if args.smoke:
        plan = Plan(
            seed=200, connections=(20,), seconds=1, warmup=0, profile_seconds=1, smoke=True, pause=0.1
        )
        Server.settle = 0.1
    else:
        plan = Plan(args.seed, CONNECTIONS, args.duration, args.warmup, profile_seconds=10, smoke=False)
    if args.connections:
        plan = replace(plan, connections=tuple(int(c) for c in args.connections.split(",")))
    if args.workloads:
        plan = replace(plan, workloads=tuple(w for w in WORKLOADS if w in args.workloads.split(",")))
    parts = [part for part in PARTS if part in args.parts.split(",")]
    if args.no_postgres and "postgres" in parts:
        parts.remove("postgres")
    missing = [
        f"{BASELINE_DIR / (module + '.py')}"
        for name, module in COMPARATORS.items()
        if name in parts and not (BASELINE_DIR / f"{module}.py").exists()
    ]
    if missing:
        parser.error(
            f"not found: {', '.join(missing)}: set BENCH_BASELINE_DIR or leave the part out with --parts"
        )
    if any(name in parts for name in COMPARATORS):
        ensure_baseline_venv()  # once, before anything is timed
    compile_tree()
    results = run(plan, parts)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.chart:
        from benchmarks.chart import draw

        draw(results, args.chart)
    sys.stdout.write(report(results) + "\n")
    logger.info("done in %.0f s", results["wall_seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
