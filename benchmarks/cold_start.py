"""The first second after start: the tail of a load that begins as soon as a server is ready.

    .venv/bin/python -m benchmarks.cold_start --json benchmarks/cold_start.json   # about 5 minutes
    .venv/bin/python -m benchmarks.cold_start --smoke                             # 1 s runs, tiny seed

Each system is started afresh for each workload (GET by id, mixed, write-only); a `wrk` run at 200
connections begins within a second of its first ready answer (the cold run), and a second run follows at
once (the warm run). While each run lasts, the listening socket's accept queue is sampled every 50 ms: the
connections the kernel has completed and no worker has taken yet.

The systems, 2 workers each, on SQLite:
- the ceiling (`ceiling_app.py`) as its README runs it, under gunicorn with uvicorn workers;
- the same ceiling under plain `uvicorn --workers 2` (uvloop), the bare server;
- the same ceiling under `lastro serve` (a plain app: lastro's process model and loop, no middleware);
- the orders service on lastro, every feature on.

Between the first two and the last two lies lastro's event loop (`lastro.serve.event_loop`): uvloop's
server takes one waiting connection per turn of a busy loop, lastro's takes a batch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import BIN, Server, free_port, lastro_env
from benchmarks.orders.baseline import BASELINE_DIR, BASELINE_VENV, ensure_baseline_venv, prepare_baseline
from benchmarks.orders.systems import WORKERS, prepare_lastro
from benchmarks.orders.workloads import Plan, Running, run_wrk
from benchmarks.servers import _ms, _n, _table, load_average, machine

logger = logging.getLogger("benchmarks.cold_start")

CONNECTIONS = 200
WORKLOADS = ("get", "mixed", "write")
# The system of each name: the ceiling under one of three servers, or the orders service.
SYSTEMS = ("ceiling-gunicorn", "ceiling-uvicorn", "ceiling-lastro", "orders-lastro")
P99_TARGET_MS = 100.0


def _accept_queue(port: int) -> int:
    """Connections waiting in the listening socket's accept queue (`ss`'s Recv-Q of a LISTEN socket)."""
    out = subprocess.run(
        ["ss", "-ltnH", f"( sport = :{port} )"], capture_output=True, text=True, check=False
    ).stdout.split()
    return int(out[1]) if len(out) > 1 and out[1].isdigit() else 0


def _sampled(port: int, run: Callable[[], Any]) -> tuple[Any, int]:
    """`run()`'s result, and the longest accept queue seen while it ran."""
    longest = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal longest
        while not done.wait(0.05):
            longest = max(longest, _accept_queue(port))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        return run(), longest
    finally:
        done.set()
        sampler.join()


def _ceiling_server(workdir: Path, plan: Plan, how: str) -> Running:
    """The ceiling, seeded, served by gunicorn (its README), plain uvicorn or `lastro serve`."""
    running = prepare_baseline(workdir, plan, "ceiling")
    if how == "gunicorn":
        return running
    port = free_port()
    app_dir = str(workdir / "baseline")
    env = lastro_env(workdir, port, WORKERS, DB_PATH=str(workdir / "ceiling.db"))
    if how == "uvicorn":
        argv = [str(BASELINE_VENV / "bin" / "uvicorn"), "--workers", str(WORKERS), "--port", str(port)]
        argv += ["--no-access-log", "--log-level", "warning", "--app-dir", app_dir, "ceiling_app:app"]
    else:  # "lastro"
        argv = [str(BIN / "lastro"), "serve", "ceiling_app:app", "--app-dir", app_dir]
    running.server = Server(argv, port, "/orders/1", env, workdir / f"ceiling-{how}.log")
    return running


def _system(name: str, stack: contextlib.ExitStack, workdir: Path, plan: Plan) -> Running:
    if name == "orders-lastro":
        return prepare_lastro(stack, "lastro SQLite", workdir, f"sqlite:///{workdir / 'orders.db'}", plan)
    return _ceiling_server(workdir, plan, name.removeprefix("ceiling-"))


def measure(name: str, workload: str, plan: Plan) -> list[dict[str, Any]]:
    """A fresh start of `name`, then the cold and the warm run of `workload`."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="lastro-bench-cold-") as tmp, contextlib.ExitStack() as stack:
        running = _system(name, stack, Path(tmp), plan)
        running.server.settle = 0.0  # the load starts right after the first ready answer
        stack.enter_context(running.server)
        ready_at = time.monotonic()
        if running.after_start is not None:
            running.after_start(running)  # the orders service's bearer token: one login
        port = int(running.server.url.rsplit(":", 1)[1])
        script = running.scripts[workload]
        for label in ("cold", "warm"):
            started_after = time.monotonic() - ready_at
            load, queue = _sampled(
                port, lambda: run_wrk(running.server.url, CONNECTIONS, plan.seconds, script, running.env)
            )
            row = {"system": name, "workload": workload, "run": label, "accept_queue_max": queue}
            row |= {"started_after_ready_s": round(started_after, 2)} | load.as_dict()
            logger.info(
                "%-22s %-6s %-4s p50 %7.1f ms  p99 %7.1f ms  %6.0f req/s  accept queue max %d",
                *(name, workload, label, load.p50_ms, load.p99_ms, load.rps, queue),
            )
            rows.append(row)
    return rows


def run(plan: Plan, systems: Sequence[str]) -> dict[str, Any]:
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "seed": plan.seed,
        "seconds": plan.seconds,
        "connections": CONNECTIONS,
        "load_before": load_average(),
        "runs": [],
    }
    for workload in plan.workloads:
        for name in systems:
            results["runs"] += measure(name, workload, plan)
    results["load_after"] = load_average()
    return results


def report(results: dict[str, Any]) -> str:
    header = ["workload", "system", "run", "starts after ready s", "req/s", "p50 ms", "p99 ms"]
    header += ["accept queue max", f"p99 <= {P99_TARGET_MS:g} ms"]
    rows = [
        [
            *(r["workload"], r["system"], r["run"], r["started_after_ready_s"], _n(r["rps"])),
            *(_ms(r["p50_ms"]), _ms(r["p99_ms"]), r["accept_queue_max"]),
            "met" if r["p99_ms"] <= P99_TARGET_MS else "**missed**",
        ]
        for r in results["runs"]
    ]
    m = results["machine"]
    return "\n".join(
        [
            f"Measured {results['date']} on {m['cores']} cores, Python {m['python']}; {results['seed']:,} "
            f"orders; {results['seconds']:g} s per run at {results['connections']} connections; load "
            f"average before / after: {results['load_before']} / {results['load_after']}.",
            "",
            *_table(header, rows),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="1 s runs, 200 orders, GET only")
    parser.add_argument("--duration", type=float, default=10, help="seconds of each wrk run")
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    parser.add_argument("--report", type=Path, default=None, help="only print the report of a --json file")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help="comma-separated, of: " + "; ".join(SYSTEMS)
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.report:
        sys.stdout.write(report(json.loads(args.report.read_text())) + "\n")
        return 0
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install -y wrk")
    if not (BASELINE_DIR / "ceiling_app.py").exists():
        parser.error(f"no ceiling_app.py in {BASELINE_DIR}: set BENCH_BASELINE_DIR")
    systems = [name for name in SYSTEMS if name in args.systems.split(",")]
    if args.smoke:
        plan = Plan(200, (CONNECTIONS,), 1, 0, 0, smoke=True, workloads=("get",))
    else:
        plan = Plan(100_000, (CONNECTIONS,), args.duration, 0, 0, smoke=False, workloads=WORKLOADS)
    ensure_baseline_venv()
    results = run(plan, systems)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(report(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
