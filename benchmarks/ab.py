"""Two source trees of lastro side by side: the orders service, one workload, rounds interleaved.

    git worktree add --detach /tmp/before <commit>
    .venv/bin/python -m benchmarks.ab before=/tmp/before after=. --rounds 7 --json ab.json
    # one tree, two settings: what metrics cost a GET by id
    .venv/bin/python -m benchmarks.ab off=. on=. --set off:METRICS_ENABLED=false --workload get
    # on PostgreSQL: each tree on its own copy of one seeded database on the local server
    .venv/bin/python -m benchmarks.ab before=/tmp/before after=. --postgres --workload get

Each tree runs as its own `lastro serve` (2 workers, started in the tree with `PYTHONPATH` set to it, on
this checkout's interpreter and packages) on its own copy of a database migrated and seeded by that tree's
code (a SQLite file, or with `--postgres` a database on the local server, BENCH_POSTGRES_URL); all are up
together and take turns, round by round (`benchmarks.rounds`). The question it answers: what did a change
cost the orders service, measured in one run on one machine. The workloads: get, list, mixed, write, and
patch, whose every run PATCHes orders of its system's database that no run has touched yet
(`benchmarks.orders.workloads.PatchTargets`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.orders.systems import fetch_token, postgres_database
from benchmarks.orders.workloads import PatchTargets, Plan
from benchmarks.rounds import interleaved, orders_system
from benchmarks.servers import load_average, machine

WORKLOADS = ("get", "list", "mixed", "write", "patch")


def run(
    trees: dict[str, Path],
    workload: str,
    connections: int,
    plan: Plan,
    rounds: int,
    settings: dict[str, dict[str, str]] | None = None,
    postgres: bool = False,
) -> dict[str, Any]:
    settings = settings or {}
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "trees": {name: str(tree) for name, tree in trees.items()},
        "settings": settings,
        "database": "postgresql" if postgres else "sqlite",
        "load_before": load_average(),
    }
    with tempfile.TemporaryDirectory(prefix="lastro-bench-ab-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        seeded: dict[Path, Path | str] = {}  # per source tree: its schema, its seed

        def database(tree: Path) -> Path | str:
            """A database for one system: a copy of the one `tree` migrated and seeded (once per tree)."""
            if tree not in seeded:
                if postgres:
                    seeded[tree] = stack.enter_context(postgres_database())
                    seed_with(tree, str(seeded[tree]), plan.seed)
                else:
                    seeded[tree] = workdir / f"seeded-{len(seeded)}.db"
                    seed_with(tree, f"sqlite:///{seeded[tree]}", plan.seed)
            if postgres:
                return stack.enter_context(postgres_database(template=str(seeded[tree])))
            return seeded[tree]  # the SQLite file is copied by `orders_system`

        systems = {
            name: orders_system(
                workdir, name, settings.get(name, {}), database(tree), plan.seed, workload, tree=tree
            )
            for name, tree in trees.items()
        }

        def token(name: str, server: Any, env: dict[str, str]) -> None:
            env["BENCH_TOKEN"] = fetch_token(server.url)

        targets: dict[str, PatchTargets] = {}
        if workload == "patch":
            for name, (server, _, _) in systems.items():
                targets[name] = PatchTargets(server.env["DATABASE_URL"], workdir / f"patch-ids-{name}.txt")
                stack.callback(targets[name].close)
        results["rows"] = interleaved(
            systems, workload, connections, plan, rounds, before=token, prepare=targets
        )
    results["load_after"] = load_average()
    return results


def seed_with(tree: Path, url: str, seed: int) -> None:
    """Migrate and seed `url` with `tree`'s own code: an older tree gets the schema its code expects."""
    code = (
        "import sys; from benchmarks.orders.systems import migrate_and_seed; "
        "migrate_and_seed(sys.argv[1], int(sys.argv[2]))"
    )
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-c", code, url, str(seed)], cwd=tree, env=env, check=True)


def report(results: dict[str, Any]) -> str:
    """One row per tree; "paired CPU" is the median over rounds of its CPU per request over the first
    tree's in the same round, steadier than the ratio of medians when the machine's speed drifts."""
    rows = results["rows"]
    base = rows[0]
    lines = [
        "| tree | 2xx/s (median) | vs first | worker CPU ms/req | paired CPU | p99 ms | rounds (2xx/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row["ok_rps"] / base["ok_rps"] if base["ok_rps"] else 0.0
        rounds = ", ".join(f"{run['ok_rps']:,.0f}" for run in row["runs"])
        lines.append(
            f"| {row['system']} | {row['ok_rps']:,.0f} | {ratio:.2f}x | {row['cpu_ms_per_request']:.3f} | "
            f"{paired_cpu(row, base):.2f} | {row['p99_ms']:.1f} | {rounds} |"
        )
    return "\n".join(lines)


def paired_cpu(row: dict[str, Any], base: dict[str, Any]) -> float:
    ratios = [
        run["cpu_ms_per_request"] / first["cpu_ms_per_request"]
        for run, first in zip(row["runs"], base["runs"], strict=False)
        if first["cpu_ms_per_request"]
    ]
    return statistics.median(ratios) if ratios else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "trees", nargs="+", metavar="NAME=PATH", help="source trees of lastro; the first is the reference"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME:SETTING=VALUE",
        help="a setting of one tree's service, e.g. off:METRICS_ENABLED=false (repeatable)",
    )
    parser.add_argument("--workload", default="mixed", choices=WORKLOADS)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="wrk runs of each tree, interleaved")
    parser.add_argument("--duration", type=float, default=5, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=float, default=1, help="seconds of wrk before each measured run")
    parser.add_argument("--seed", type=int, default=100_000, help="orders in the database")
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    parser.add_argument("--postgres", action="store_true", help="on PostgreSQL (BENCH_POSTGRES_URL's server)")
    args = parser.parse_args(argv)
    trees: dict[str, Path] = {}
    for item in args.trees:
        name, _, path = item.partition("=")
        if not name or not path or not Path(path).is_dir():
            parser.error(f"{item!r}: expected NAME=PATH, PATH a source tree of lastro")
        trees[name] = Path(path).resolve()
    settings: dict[str, dict[str, str]] = {}
    for item in args.set:
        name, _, assignment = item.partition(":")
        key, _, value = assignment.partition("=")
        if name not in trees or not key:
            parser.error(f"--set {item!r}: expected NAME:SETTING=VALUE, NAME one of {', '.join(trees)}")
        settings.setdefault(name, {})[key] = value
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install -y wrk")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    plan = Plan(args.seed, (args.connections,), args.duration, args.warmup, profile_seconds=0, smoke=False)
    results = run(trees, args.workload, args.connections, plan, args.rounds, settings, args.postgres)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(report(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
