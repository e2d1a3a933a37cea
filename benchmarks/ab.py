"""Two source trees of lastro side by side: the orders service on SQLite, one workload, rounds interleaved.

    git worktree add --detach /tmp/before <commit>
    .venv/bin/python -m benchmarks.ab before=/tmp/before after=. --rounds 7 --json ab.json
    # one tree, two settings: what metrics cost a GET by id
    .venv/bin/python -m benchmarks.ab off=. on=. --set off:METRICS_ENABLED=false --workload get

Each tree runs as its own `lastro serve` (2 workers, `PYTHONPATH` set to the tree, this checkout's
interpreter and packages) on its own copy of one seeded database; both are up together and take turns,
round by round (`benchmarks.rounds`). The question it answers: what did a change cost the orders service,
measured in one run on one machine. The workloads that need no per-request state: get, list, mixed, write.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.orders.systems import fetch_token, migrate_and_seed
from benchmarks.orders.workloads import Plan
from benchmarks.rounds import interleaved, orders_system
from benchmarks.servers import load_average, machine

WORKLOADS = ("get", "list", "mixed", "write")


def run(
    trees: dict[str, Path],
    workload: str,
    connections: int,
    plan: Plan,
    rounds: int,
    settings: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    settings = settings or {}
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "trees": {name: str(tree) for name, tree in trees.items()},
        "settings": settings,
        "load_before": load_average(),
    }
    with tempfile.TemporaryDirectory(prefix="lastro-bench-ab-") as tmp:
        workdir = Path(tmp)
        seeded = workdir / "seeded.db"
        migrate_and_seed(f"sqlite:///{seeded}", plan.seed)
        systems = {
            name: orders_system(
                workdir, name, {"PYTHONPATH": str(tree)} | settings.get(name, {}), seeded, plan.seed, workload
            )
            for name, tree in trees.items()
        }

        def token(name: str, server: Any, env: dict[str, str]) -> None:
            env["BENCH_TOKEN"] = fetch_token(server.url)

        results["rows"] = interleaved(systems, workload, connections, plan, rounds, before=token)
    results["load_after"] = load_average()
    return results


def report(results: dict[str, Any]) -> str:
    rows = results["rows"]
    base = rows[0]
    lines = [
        "| tree | 2xx/s (median) | vs first | worker CPU ms/req | p99 ms | rounds (2xx/s) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row["ok_rps"] / base["ok_rps"] if base["ok_rps"] else 0.0
        rounds = ", ".join(f"{run['ok_rps']:,.0f}" for run in row["runs"])
        lines.append(
            f"| {row['system']} | {row['ok_rps']:,.0f} | {ratio:.2f}x | {row['cpu_ms_per_request']:.3f} | "
            f"{row['p99_ms']:.1f} | {rounds} |"
        )
    return "\n".join(lines)


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
    results = run(trees, args.workload, args.connections, plan, args.rounds, settings)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(report(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
