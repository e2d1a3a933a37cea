"""How long one PostgreSQL unit of work takes, read and write, one at a time: the round trips it makes.

    .venv/bin/python -m benchmarks.delay_proxy --listen 127.0.0.1:6432 --to 127.0.0.1:5432 --delay-ms 1 &
    .venv/bin/python -m benchmarks.unit_latency before=/tmp/before after=. \\
        --url postgresql://postgres@127.0.0.1:6432/test

Each tree runs in a process of its own (`PYTHONPATH` set to it, on this checkout's interpreter), with
`lastro.db.transactions.Transactions` on a pool of one connection: `--units` read units (a SELECT by primary
key), as many write units (an INSERT) and as many that also publish an event (the INSERT and the broadcast's
`publish_on_commit` on PostgreSQL, as a change to an order does), one after the other, trees taking turns
`--rounds` times. Through
the delay proxy, every round trip costs its delay twice, so the medians tell how many round trips a unit
makes; on loopback, what each costs the client.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

_CHILD = """
import asyncio, json, sys, time, uuid
from sqlalchemy import text
from lastro.coordination.postgres_events import PostgresTransport
from lastro.coordination.tables import ensure_tables
from lastro.db.engine import Database, DatabaseOptions
from lastro.db.transactions import Transactions

url, units = sys.argv[1], int(sys.argv[2])
table = f"bench_unit_{uuid.uuid4().hex[:12]}"

async def main() -> dict[str, float]:
    database = Database(url, DatabaseOptions(pool_size=1, max_overflow=0))
    transactions = Transactions(database)
    ensure_tables(database)
    events = PostgresTransport(database)
    await transactions.write(lambda c: c.execute(text(f"CREATE TABLE {table} (id int PRIMARY KEY)")))
    read = lambda c: c.execute(text(f"SELECT id FROM {table} WHERE id = 1")).first()

    def publishing(c, n):
        c.execute(text(f"INSERT INTO {table} VALUES ({n})"))
        events.publish_on_commit(c, table, {"id": n})

    def drop(c):
        c.execute(text(f"DROP TABLE {table}"))
        c.execute(text("DELETE FROM lastro_events WHERE channel = :table"), {"table": table})

    timings: dict[str, list[float]] = {"read": [], "write": [], "publish": []}
    try:
        for n in range(units):
            started = time.perf_counter()
            await transactions.write(lambda c: c.execute(text(f"INSERT INTO {table} VALUES ({n})")))
            timings["write"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await transactions.read(read)
            timings["read"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await transactions.write(publishing, units + n)
            timings["publish"].append(time.perf_counter() - started)
    finally:
        await transactions.write(drop)
        transactions.close()
        database.dispose()
    return {kind: sorted(values)[len(values) // 2] * 1000 for kind, values in timings.items()}

print(json.dumps(asyncio.run(main())))
"""


def measure(tree: Path, url: str, units: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "LOG_LEVEL": "warning"}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, url, str(units)], env=env, cwd=tree, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"{tree}: {result.stderr.strip().splitlines()[-1]}")
    medians: dict[str, float] = json.loads(result.stdout)
    return medians


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("trees", nargs="+", help="NAME=PATH of a source tree of lastro")
    parser.add_argument("--url", required=True, help="a PostgreSQL URL, e.g. through benchmarks.delay_proxy")
    parser.add_argument("--units", type=int, default=200, help="units of each kind per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    trees = {name: Path(path).resolve() for name, _, path in (tree.partition("=") for tree in args.trees)}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            runs[name].append(measure(tree, args.url, args.units))
    kinds = {"read": "read unit", "write": "write unit", "publish": "write unit with an event"}
    lines = [
        "| tree | " + " | ".join(f"{label}, median ms" for label in kinds.values()) + " |",
        "|---" * (len(kinds) + 1) + "|",
    ]
    for name, medians in runs.items():
        cells = [f"{statistics.median(run[kind] for run in medians):.2f}" for kind in kinds]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
