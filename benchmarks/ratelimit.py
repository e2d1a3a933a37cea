"""What a rate limit costs a request: one check in-process on each store, and end to end under lastro serve.

    .venv/bin/python -m benchmarks.ratelimit --json benchmarks/ratelimit.json
    .venv/bin/python -m benchmarks.ratelimit --smoke          # every part, tiny: under a minute
    .venv/bin/python -m benchmarks.ratelimit --parts checks   # the in-process part only (no wrk)

Three parts, on loopback, Redis on 127.0.0.1:6379:

- checks: microseconds per `hit` of one rate on `LocalStore` (one worker's memory), `SharedFileStore` (the
  mmap'd file a machine's workers share) and `RedisStore`, for one hot key and for 10,000 keys in turn;
  rounds of many checks, the median round;
- hello: the FastAPI hello in `lastro.create_app` (2 workers, LOG_LEVEL=warning) with
  RATE_LIMIT_DEFAULT=off, then with a limit it never reaches on the shared file, then on Redis: wrk
  GET / at 50 connections;
- mixed: the orders service on SQLite (`benchmarks/orders`, 100k orders seeded once, a copy per system)
  under the mixed workload (70% GET by id, 20% list, 10% POST) at 200 connections, the same three ways.

The systems of a part are up together and take turns round by round, so that a change in the load of the
shared machine hits them alike. Each figure is the median of the rounds; CPU ms per request is the worker
processes' CPU time over the requests wrk completed, the figure that other load disturbs least.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis

from benchmarks.harness import BIN, Server, free_port, lastro_env
from benchmarks.orders.systems import WORKERS, fetch_token, migrate_and_seed
from benchmarks.orders.workloads import Plan
from benchmarks.rounds import interleaved, orders_system
from benchmarks.servers import load_average, machine
from lastro.ratelimit.redis_store import RedisStore
from lastro.ratelimit.shared_file import SharedFileStore
from lastro.ratelimit.stores import LocalStore, Store
from lastro.ratelimit.window import Rate

logger = logging.getLogger("benchmarks.ratelimit")

REDIS_URL = "redis://127.0.0.1:6379/0"
NEVER_REACHED = "1000000/minute"
RATE = Rate(1_000_000, 60)
KEYS = 10_000
PARTS = ("checks", "hello", "mixed")
# The end-to-end systems: the settings that make each one, over the part's own.
LIMITS: dict[str, dict[str, str]] = {
    "limit off": {"RATE_LIMIT_DEFAULT": "off"},
    "shared file": {"RATE_LIMIT_DEFAULT": NEVER_REACHED},
    "Redis": {"RATE_LIMIT_DEFAULT": NEVER_REACHED, "REDIS_URL": REDIS_URL},
}


# --- in-process: one check --------------------------------------------------------------------------------


async def _round(store: Store, keys: Sequence[str], checks: int) -> float:
    """Microseconds per check over `checks` checks, cycling through `keys`."""
    started = time.perf_counter()
    for n in range(checks):
        await store.hit([(keys[n % len(keys)], RATE)])
    return (time.perf_counter() - started) / checks * 1e6


async def _checks(workdir: Path, rounds: int, checks: int) -> list[dict[str, Any]]:
    prefix = f"lastro-bench-{uuid.uuid4().hex[:8]}:"
    stores: dict[str, Callable[[], Store]] = {
        "LocalStore": LocalStore,
        "SharedFileStore": lambda: SharedFileStore(workdir / "limits"),
        "RedisStore": lambda: RedisStore(REDIS_URL, timeout=2.0, prefix=prefix),
    }
    hot, spread = ["client"], [f"client-{n}" for n in range(KEYS)]
    rows = []
    try:
        for name, make in stores.items():
            store = make()
            try:
                await _round(store, spread, min(checks, 1000))  # warm: connections, pages, scripts
                for label, keys in (("1 key", hot), (f"{KEYS:,} keys", spread)):
                    times = [await _round(store, keys, checks) for _ in range(rounds)]
                    row = {"store": name, "keys": label, "us_per_check": round(statistics.median(times), 1)}
                    row["rounds_us"] = [round(t, 1) for t in times]
                    logger.info("  %-16s %-12s %8.1f µs/check", name, label, row["us_per_check"])
                    rows.append(row)
            finally:
                await store.close()
    finally:
        _forget_redis_keys(prefix.rstrip(":"))
    return rows


def _forget_redis_keys(fragment: str) -> None:
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"*{fragment}*", count=10_000))
        for start in range(0, len(keys), 5000):
            client.delete(*keys[start : start + 5000])


# --- end to end -------------------------------------------------------------------------------------------


def _hello(workdir: Path, name: str, settings: dict[str, str]) -> tuple[Server, Path, dict[str, str]]:
    directory = workdir / name.replace(" ", "-")
    directory.mkdir()
    port = free_port()
    env = lastro_env(directory, port, WORKERS, LOG_LEVEL="warning", LOG_FORMAT="json", **settings)
    argv = [str(BIN / "lastro"), "serve", "benchmarks.apps.hello_lastro:create_app", "--factory"]
    script = workdir / "hello.lua"
    script.write_text("-- GET /\n")
    return Server(argv, port, "/health/ready", env, directory / "serve.log"), script, {}


def run(parts: Sequence[str], plan: Plan, rounds: int, checks: int) -> dict[str, Any]:
    started = time.monotonic()
    found = machine()
    found["versions"] |= {name: _version(name) for name in ("redis", "limits")}
    found["redis_server"] = redis.Redis.from_url(REDIS_URL).info("server")["redis_version"]
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": found,
        "rounds": rounds,
        "seconds": plan.seconds,
        "warmup": plan.warmup,
        "seed": plan.seed,
        "workers": WORKERS,
        "load_before": load_average(),
    }
    service = f"bench-{uuid.uuid4().hex[:8]}"  # this run's Redis keys
    limits = {name: settings | {"SERVICE_NAME": service} for name, settings in LIMITS.items()}
    with tempfile.TemporaryDirectory(prefix="lastro-bench-ratelimit-") as tmp:
        workdir = Path(tmp)
        try:
            if "checks" in parts:
                results["checks"] = asyncio.run(_checks(workdir, rounds, checks))
            if "hello" in parts:
                systems = {name: _hello(workdir, name, s) for name, s in limits.items()}
                results["hello"] = interleaved(systems, "hello", 50, plan, rounds)
            if "mixed" in parts:
                seeded = workdir / "seeded.db"
                seconds = migrate_and_seed(f"sqlite:///{seeded}", plan.seed)
                logger.info("migrated and seeded %d orders in %.1f s", plan.seed, seconds)
                systems = {
                    f"orders {name}": orders_system(workdir, name, s, seeded, plan.seed)
                    for name, s in limits.items()
                }

                def token(name: str, server: Server, env: dict[str, str]) -> None:
                    env["BENCH_TOKEN"] = fetch_token(server.url)

                results["mixed"] = interleaved(systems, "mixed", 200, plan, rounds, before=token)
        finally:
            _forget_redis_keys(service)
    results["load_after"] = load_average()
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    return results


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def report(results: dict[str, Any]) -> str:
    lines = []
    if "checks" in results:
        lines += ["| store | keys | µs per check (median) |", "|---|---|---|"]
        lines += [f"| {r['store']} | {r['keys']} | {r['us_per_check']:.1f} |" for r in results["checks"]]
        lines.append("")
    for part in ("hello", "mixed"):
        if part not in results:
            continue
        rows = results[part]
        base = rows[0]
        lines += [
            "| system | c | req/s | vs off | p50 ms | p99 ms | worker CPU ms/req | vs off | non-2xx |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            rps = row["rps"] / base["rps"] - 1 if base["rps"] else 0.0
            cpu = (
                row["cpu_ms_per_request"] / base["cpu_ms_per_request"] - 1
                if base["cpu_ms_per_request"]
                else 0
            )
            lines.append(
                f"| {row['system']} ({row['workload']}) | {row['connections']} | {row['rps']:,.0f} | "
                f"{rps:+.1%} | {row['p50_ms']:.2f} | {row['p99_ms']:.1f} | {row['cpu_ms_per_request']:.3f} | "
                f"{cpu:+.1%} | {row['non_2xx']} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="every part, tiny: 200 orders, 1 s loads")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each measurement")
    parser.add_argument("--checks", type=int, default=20_000, help="checks in each in-process round")
    parser.add_argument("--duration", type=float, default=5, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=float, default=1, help="seconds of wrk before each measured run")
    parser.add_argument("--seed", type=int, default=100_000, help="orders in the mixed part's database")
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    parts = [part for part in PARTS if part in args.parts.split(",")]
    if args.smoke:
        plan = Plan(200, (200,), 1, 0, profile_seconds=0, smoke=True, pause=0.1)
        rounds, checks = 2, 200
        Server.settle = 0.1
    else:
        plan = Plan(args.seed, (200,), args.duration, args.warmup, profile_seconds=0, smoke=False)
        rounds, checks = args.rounds, args.checks
    if set(parts) - {"checks"} and shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install -y wrk")
    results = run(parts, plan, rounds, checks)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(report(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
