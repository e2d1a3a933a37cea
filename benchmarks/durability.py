"""What `SQLITE_SYNCHRONOUS=FULL` costs against `NORMAL` on the orders write-only workload.

    .venv/bin/python -m benchmarks.durability                      # 3 rounds x 10 s per setting: ~3 minutes
    .venv/bin/python -m benchmarks.durability --smoke              # 1 round of 1 s, 20 connections

Two orders services on SQLite, 2 workers each, the same seed, `LOG_LEVEL=info` with JSON access lines (as
`benchmarks.run` runs them), one with each setting. They are up together and take turns round by round, so
that a change in the load of the shared machine hits both alike. The load is `benchmarks.run`'s write
cell: `lua/orders_write.lua` (100% POST /api/orders) at 200 connections. The databases live under
`--dir` (a temporary directory by default): it must be on a real disk, since on a tmpfs fsync costs
nothing and FULL would look free.

Per setting: the best round by req/s (with the worst in brackets), its p50 and p99, and the workers' CPU
time per request; the report is markdown on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import BIN, Server, free_port
from benchmarks.orders.systems import fetch_token, migrate_and_seed, orders_env
from benchmarks.orders.workloads import LASTRO_SCRIPTS, Plan, drive
from benchmarks.servers import load_average, machine
from lastro.db import sqlite

__all__ = ["main", "measure", "report"]

logger = logging.getLogger("benchmarks.durability")

LEVELS = ("NORMAL", "FULL")
WORKERS = 2


def _server(workdir: Path, level: str, seed: int) -> Server:
    url = f"sqlite:///{workdir / f'{level.lower()}.db'}"
    seconds = migrate_and_seed(url, seed)
    logger.info("%s: migrated and seeded %d orders in %.1f s", level, seed, seconds)
    port = free_port()
    env = orders_env(workdir, port, url, WORKERS) | {"SQLITE_SYNCHRONOUS": level}
    argv = [str(BIN / "lastro"), "serve", "examples.orders.app:create_app", "--factory"]
    return Server(argv, port, "/health/ready", env, workdir / f"{level.lower()}.log")


def measure(workdir: Path, plan: Plan, rounds: int, connections: int) -> dict[str, list[dict[str, Any]]]:
    cells: dict[str, list[dict[str, Any]]] = {level: [] for level in LEVELS}
    with contextlib.ExitStack() as stack:
        servers = {level: stack.enter_context(_server(workdir, level, plan.seed)) for level in LEVELS}
        tokens = {level: fetch_token(server.url) for level, server in servers.items()}
        for number in range(rounds):
            for level in LEVELS if number % 2 == 0 else reversed(LEVELS):
                cell = drive(
                    servers[level],
                    "write",
                    LASTRO_SCRIPTS["write"],
                    connections,
                    plan,
                    env={"BENCH_TOKEN": tokens[level]},
                    label=f"round {number + 1} {level}",
                )
                cells[level].append(cell)
    return cells


def report(cells: dict[str, list[dict[str, Any]]], info: dict[str, Any]) -> str:
    lines = [
        f"{info['rounds']} rounds of {info['seconds']:g} s (after {info['warmup']:g} s of warm-up), "
        f"{info['connections']} connections, {info['seed']:,} orders seeded; "
        f"load before {info['load_before']}, after {info['load_after']}.",
        "",
        "| SQLITE_SYNCHRONOUS | req/s (best [worst]) | p50 ms | p99 ms | non-2xx | worker CPU ms/request |",
        "|---|---|---|---|---|---|",
    ]
    for level, runs in cells.items():
        best = max(runs, key=lambda run: run["rps"])
        worst = min(runs, key=lambda run: run["rps"])
        lines.append(
            f"| {level} | {best['rps']:,.0f} [{worst['rps']:,.0f}] | {best['p50_ms']:.2f} | "
            f"{best['p99_ms']:.2f} | {sum(run['non_2xx'] for run in runs)} | "
            f"{best['cpu_ms_per_request']:.3f} |"
        )
    normal = max(run["rps"] for run in cells["NORMAL"])
    full = max(run["rps"] for run in cells["FULL"])
    lines += ["", f"FULL / NORMAL, best rounds: {full / normal:.2f}x the req/s."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="1 round of 1 s at 20 connections, 200 orders")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20_000, help="orders in each database")
    parser.add_argument("--dir", type=Path, default=None, help="where the databases go (a real disk)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install -y wrk")
    if args.smoke:
        args.rounds, args.duration, args.warmup, args.connections, args.seed = 1, 1, 0, 20, 200
    plan = Plan(args.seed, (args.connections,), args.duration, args.warmup, 0, args.smoke, ("write",))
    info = vars(args) | {"seconds": args.duration, "load_before": load_average()}
    with tempfile.TemporaryDirectory(prefix="lastro-durability-", dir=args.dir) as directory:
        cells = measure(Path(directory), plan, args.rounds, args.connections)
    info["load_after"] = load_average()
    found = machine()
    logger.info("SQLite %s, wrk %s, %s", sqlite.version(), found["wrk"].split(" Copyright")[0], found["cpu"])
    sys.stdout.write(report(cells, info) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
