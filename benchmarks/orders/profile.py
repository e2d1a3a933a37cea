"""Where a lastro SQLite worker spends its time under a load (mixed, and GET by id): py-spy on the busiest
worker, each sample put in one cost centre (HTTP server, middleware, validation, database, serialization...),
and the share of samples whose running frame is lastro's own request stack (request id, access log, metrics,
limits, back-pressure, timeouts, errors), the figure the "stack <= 10% of a GET" target reads.

A run of its own after the measured ones, the other systems idle, since sampling slows the worker.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import BIN, Server, cpu_seconds
from benchmarks.orders.workloads import LASTRO_SCRIPTS, Plan
from benchmarks.servers import parse_wrk, wrk_command, wrk_script

logger = logging.getLogger("benchmarks.orders")

PROFILE_CONNECTIONS = 50

# Leaf first, each sample goes to the first frame that one of these recognises (py-spy names a frame
# `function (path/relative/to/sys.path.py:line)`). Frames of other standard library modules are skipped, so
# that, say, uuid4() counts for the middleware that called it.
SERIALIZERS = {"dump_json", "dump_python", "serialize_response", "jsonable_encoder", "render", "dumps"}


def _centre(function: str, file: str) -> str | None:
    def under(*prefixes: str) -> bool:
        return file.startswith(prefixes)

    name = function.rsplit(".", 1)[-1]
    if under("jwt/", "argon2/", "examples/orders/auth.py"):
        return "auth / JWT"
    if name in SERIALIZERS or under("json/encoder.py"):
        return "serialization (pydantic dump_json, JSON encoding)"
    if under("sqlalchemy/", "sqlite3/", "pysqlite3/", "psycopg/", "psycopg_pool/", "lastro/db/"):
        return "DB: SQLAlchemy + driver"
    if under("pydantic/", "pydantic_core/", "annotated_types/", "fastapi/_compat") or (
        file == "fastapi/dependencies/utils.py" and name != "solve_dependencies"
    ):
        return "validation (pydantic, FastAPI params/body)"
    if under("structlog/", "logging/", "lastro/observability/"):
        return "logging (structlog, logging)"
    if under("lastro/http/", "starlette/middleware/"):
        return "lastro middleware"
    if under("uvicorn/", "httptools/", "h11/", "lastro/serve/"):
        return "HTTP server (uvicorn, lastro protocol)"
    if under("fastapi/", "starlette/"):
        return "FastAPI / Starlette routing"
    if under("examples/orders/", "lastro/"):
        return "orders app code, lastro units"
    if under("asyncio/", "concurrent/", "threading.py", "anyio/", "selectors.py"):
        return "event loop, threads (asyncio, futures)"
    return None


def classify_stack(frames: list[str]) -> str:
    for frame in reversed(frames):
        function, _, where = frame.rpartition(" (")
        file = where.rsplit(":", 1)[0]
        centre = _centre(function, file)
        if centre is not None:
            return centre
        if (
            not file.startswith("<frozen ")
            and re.split(r"[/.]", file, maxsplit=1)[0] not in sys.stdlib_module_names
        ):
            return "other"
    return "other"


# The files of lastro's request stack: a sample whose running (leaf) frame is in one of them is time the
# stack itself spent, not the route, the database or the server under it.
STACK_FILES = (
    "lastro/http/",
    "lastro/observability/",
    "lastro/ratelimit/",
    "structlog/",
    "logging/",
    "starlette/middleware/",
    "uuid.py",
)


# Leaf frames of threads blocked in a wait that py-spy still sampled as active (on a busy machine, a thread
# just woken waits for a core in state R): the thread pool's queue, uvicorn's supervisor pipe, conditions.
IDLE_LEAF = re.compile(
    r"^(_worker \(concurrent/futures/thread\.py|Connection\._recv \(multiprocessing/connection\.py"
    r"|(Condition|Event)\.wait \(threading\.py)"
)


def summarize_profile(raw: str, top: int = 12) -> dict[str, Any]:
    """py-spy's raw (collapsed) output → share of samples per cost centre and the top self-time frames,
    leaving out the samples of threads blocked in a wait."""
    centres: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    total = idle = stack_samples = threads = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        samples = int(count)
        if IDLE_LEAF.match(frames[-1]):
            idle += samples
            continue
        total += samples
        if any(frame.startswith("Thread.run (") for frame in frames[:3]):
            threads += samples  # a thread of its own (the broadcast's reader, the database's), not a request
        if frames[-1].rpartition(" (")[2].startswith(STACK_FILES):
            stack_samples += samples
        centres[classify_stack(frames)] += samples
        functions[re.sub(r":\d+\)$", ")", frames[-1])] += samples
        lines[frames[-1]] += samples

    def shares(counter: Counter[str], key: str) -> list[dict[str, Any]]:
        return [{key: name, "pct": round(100 * n / total, 1)} for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "idle_samples_left_out": idle,
        "stack_self_pct": round(100 * stack_samples / total, 1) if total else 0.0,
        "threads_pct": round(100 * threads / total, 1) if total else 0.0,
        "cost_centres_pct": {name: round(100 * n / total, 1) for name, n in centres.most_common()}
        if total
        else {},
        "top_self_frames": shares(functions, "frame") if total else [],
        "top_self_lines": shares(lines, "line") if total else [],
    }


def busiest(pids: Sequence[int], window: float = 1.0) -> tuple[int, list[float]]:
    """The pid that used the most CPU over `window` seconds, and each pid's share of that CPU."""
    before = [cpu_seconds([pid]) for pid in pids]
    time.sleep(window)
    used = [cpu_seconds([pid]) - start for pid, start in zip(pids, before, strict=True)]
    total = sum(used) or 1.0
    return pids[used.index(max(used))], [round(value / total, 2) for value in used]


def profile_worker(
    server: Server, env: dict[str, str], plan: Plan, workload: str = "mixed"
) -> dict[str, Any]:
    """py-spy on one worker while wrk drives `workload` at 50 connections (a run of its own, not one of the
    measured ones: sampling slows the worker)."""
    py_spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    workers = server.workers()
    if py_spy is None or not workers:
        return {"skipped": "py-spy is not installed" if py_spy is None else "no worker found"}
    seconds = plan.profile_seconds
    raw = server.log.parent / f"profile-{workload}.txt"
    with wrk_script(LASTRO_SCRIPTS[workload]) as script:
        argv = wrk_command(server.url, PROFILE_CONNECTIONS, seconds + 3, script)
        wrk = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **env}
        )
        try:
            time.sleep(1.0)
            # The kernel may hand most of wrk's connections to one worker: profile the busy one.
            pid, shares = busiest(workers)
            logger.info(
                "profile: py-spy on worker %d (CPU shares %s), %s at %d connections, %g s",
                *(pid, shares, workload, PROFILE_CONNECTIONS, seconds),
            )
            spy = subprocess.run(
                [
                    *(py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))),
                    *("--rate", "200", "--nonblocking", "--format", "raw", "--output", str(raw)),
                ],
                capture_output=True,
                text=True,
                timeout=seconds + 30,
                check=False,
            )
        finally:
            stdout, _ = wrk.communicate(timeout=seconds + 30)
    if spy.returncode != 0 or not raw.exists():
        return {"skipped": f"py-spy failed: {(spy.stderr or spy.stdout).strip()[-300:]}"}
    keep = os.environ.get("BENCH_PROFILE_DIR")  # the raw stacks, for a closer look than the summary
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(raw, Path(keep) / raw.name)
    summary = summarize_profile(raw.read_text())
    load = parse_wrk(stdout.decode())
    summary |= {"worker_pid": pid, "seconds": seconds, "rps_while_sampled": round(load.rps, 1)}
    summary["workload"] = workload
    summary["worker_cpu_shares"] = shares
    logger.info("profile: %s", summary["cost_centres_pct"])
    return summary
