"""The orders service on lastro against the seed-style baseline: every system, every workload, one run.

    .venv/bin/python -m benchmarks.run --json benchmarks/orders.json --chart benchmarks/orders.png
    .venv/bin/python -m benchmarks.run --smoke          # every part, tiny seed, 1 s loads: under a minute
    .venv/bin/python -m benchmarks.run --report benchmarks/orders.json   # the tables again

All on loopback; every server starts on a free port, is stopped with SIGTERM, and every load is a `wrk`
run bounded in time. The systems, each with 2 workers:

- the limit: a raw ASGI and a FastAPI hello world under `lastro serve`, and the FastAPI hello wrapped in
  `lastro.create_app` (`benchmarks/apps/hello_lastro.py`) to price lastro's middleware stack;
- the baseline: `seed_app.py` from the shared baseline directory, as its README runs it (gunicorn + uvicorn
  workers, SQLite), in its own virtual environment under ~/.cache/lastro-bench;
- the orders service (`examples/orders`) under `lastro serve`, on SQLite and on PostgreSQL, at
  LOG_LEVEL=info with JSON logs to a file: the access line per request is part of what lastro costs.

Each database gets the same 100k orders. Five workloads (GET by id, list by status, mixed 70/20/10, POST
only, PATCH with If-Match) run at 20, 50 and 200 connections. The systems of a group are up together and
take turns cell by cell, so that a change in the load of the shared machine hits them alike. Per run:
req/s and 2xx/s, p50, p99, non-2xx (by status, from lastro's access log), socket errors, the lines of the
system's log that report a locked database, and the CPU time of its workers per request, the figure that
other load on the machine disturbs least. Per system: worker RSS after the loads and the time from process
start to ready. Then a py-spy profile of one lastro SQLite worker under the mixed load at 50 connections,
and the orders service once with 4 workers (start to ready).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from benchmarks import seed_orders
from benchmarks.servers import (
    BIN,
    HOST,
    ROOT,
    START_TIMEOUT,
    Load,
    Server,
    _ms,
    _n,
    _table,
    free_port,
    lastro_env,
    load_average,
    machine,
    parse_wrk,
    wrk_command,
    wrk_script,
)
from examples.orders.schema import orders
from lastro.db import migrations
from lastro.db.engine import Database
from lastro.settings import is_sqlite_url

logger = logging.getLogger("benchmarks.run")

LUA = ROOT / "benchmarks" / "lua"


def _find_baseline() -> Path:
    """BENCH_BASELINE_DIR, else `shared/baseline` beside this checkout or beside one of its parents."""
    if given := os.environ.get("BENCH_BASELINE_DIR"):
        return Path(given)
    candidates = [parent / "shared" / "baseline" for parent in ROOT.parents]
    return next((path for path in candidates if (path / "seed_app.py").exists()), candidates[0])


BASELINE_DIR = _find_baseline()
BASELINE_VENV = Path(
    os.environ.get("BENCH_BASELINE_VENV", Path.home() / ".cache" / "lastro-bench" / "baseline-venv")
)
POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MIGRATIONS = ROOT / "examples" / "orders" / "migrations"

WORKERS = 2
SEED = 100_000
CONNECTIONS = (20, 50, 200)
WORKLOADS = ("get", "list", "mixed", "write", "patch")
PROFILE_CONNECTIONS = 50
START_WORKERS = 4
# Other suites share the PostgreSQL server (max_connections=100): 10 connections per worker, no overflow.
POSTGRES_POOL = {"DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "0"}
# Lines of a log that report a locked database: the baseline prints DBLOCKED (gave up, 500) and RETRY (tried
# again after "database is locked"); lastro logs "database retry" and would name the error.
LOCKED = re.compile(rb"DBLOCKED|^RETRY \d|database retry|database is locked", re.MULTILINE)

LIMIT_SYSTEMS = ("raw ASGI hello", "FastAPI hello", "FastAPI hello + lastro")
ORDER_SYSTEMS = ("baseline", "lastro SQLite", "lastro PostgreSQL")

# Which script drives each workload: the baseline's own where it has one, equivalents written here for
# the rest (`orders_baseline_*.lua`), and translations of them for the orders API (`orders_*.lua`).
BASELINE_SCRIPTS = {
    "get": LUA / "orders_baseline_get.lua",
    "list": LUA / "orders_baseline_list.lua",
    "mixed": Path("lua/mixed.lua"),  # relative to the baseline directory
    "write": Path("lua/write.lua"),
    "patch": LUA / "orders_baseline_patch.lua",
}
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


SETTLE = 0.5  # seconds after the first ready answer: the other workers start alongside the first


# --- measuring -------------------------------------------------------------------------------------------


def run_wrk(url: str, connections: int, seconds: float, script: Path, env: dict[str, str]) -> Load:
    with wrk_script(script) as full:
        argv = wrk_command(url, connections, seconds, full)
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 30, check=True, env={**os.environ, **env}
        )
    return parse_wrk(done.stdout)


ACCESS_STATUS = re.compile(rb'^.*"lastro\.access".*$', re.MULTILINE)
STATUS = re.compile(rb'"status": (\d{3})')
TICK = os.sysconf("SC_CLK_TCK")


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


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time the processes have used: what a request costs, whatever else runs."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICK


class TimedServer(Server):
    """A `Server` that also times process start → first 200 of its ready path, polled every 20 ms."""

    ready_seconds: float = 0.0
    settle: float = SETTLE

    def __enter__(self) -> TimedServer:
        self.started, self.started_wall = time.monotonic(), time.time()
        super().__enter__()
        return self

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = self.started + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.argv[0]} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self._answers():
                self.ready_seconds = time.monotonic() - self.started
                time.sleep(self.settle)
                return
            time.sleep(0.02)
        self._stop()
        raise RuntimeError(f"{self.argv[0]} did not answer in {START_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def workers(self) -> list[int]:
        """The worker processes: children of the server process, less multiprocessing's resource tracker."""
        assert self.process is not None
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) != self.process.pid:
                    continue
                cmdline = (stat.parent / "cmdline").read_bytes()
                if b"resource_tracker" not in cmdline:
                    found.append(int(stat.parent.name))
        return sorted(found)

    def worker_rss(self) -> dict[str, Any]:
        """VmRSS of each worker, and PSS: forked workers share pages with their parent and each other,
        which VmRSS counts in full in every process and PSS divides among the processes sharing them."""
        rss, pss = {}, {}
        for pid in self.workers():
            with contextlib.suppress(OSError):
                rss[pid] = _proc_kib(Path(f"/proc/{pid}/status"), "VmRSS:") / 1024
                pss[pid] = _proc_kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss:") / 1024
        values = list(rss.values())
        return {
            "workers": len(values),
            "sum_mb": round(sum(values), 1),
            "max_mb": round(max(values, default=0.0), 1),
            "per_worker_mb": [round(value, 1) for value in values],
            "pss_sum_mb": round(sum(pss.values()), 1),
            "pss_per_worker_mb": [round(value, 1) for value in pss.values()],
        }


def _proc_kib(path: Path, field: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def drive(
    server: TimedServer,
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


# --- the limit: hello worlds -----------------------------------------------------------------------------


@dataclass
class Running:
    """A started system: its server, the script of each workload, and what its runs need."""

    name: str
    kind: str
    server: TimedServer
    scripts: dict[str, Path]
    env: dict[str, str] = field(default_factory=dict)
    prepare: dict[str, Callable[[int], dict[str, str]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    cells: list[dict[str, Any]] = field(default_factory=list)
    after_start: Callable[[Running], None] | None = None


def launch(stack: contextlib.ExitStack, systems: Sequence[Running], parallel: bool) -> None:
    """Start the servers one after another (each start timed alone), or all at once (--smoke: start
    times then only show the process works); each is stopped when `stack` closes."""
    for system in systems:
        logger.info("starting %s", system.name)
    if parallel and len(systems) > 1:
        with ThreadPoolExecutor(len(systems)) as pool:
            futures = [pool.submit(system.server.__enter__) for system in systems]
        errors = []
        for system, future in zip(systems, futures, strict=True):
            if future.exception() is None:
                stack.push(system.server.__exit__)
            else:
                errors.append(future.exception())
        if errors:
            raise errors[0]
    else:
        for system in systems:
            stack.enter_context(system.server)
    for system in systems:
        if system.after_start is not None:
            system.after_start(system)


def measure_interleaved(systems: Sequence[Running], plan: Plan) -> None:
    """Every (workload, connections) cell on each system in turn, rather than system after system: a
    change in the load of the shared machine then hits all systems alike, not one system's whole run."""
    workloads = list(dict.fromkeys(w for system in systems for w in system.scripts))
    for workload in workloads:
        for c in plan.connections:
            for system in systems:
                if workload in system.scripts:
                    cell = drive(
                        system.server,
                        workload,
                        system.scripts[workload],
                        c,
                        plan,
                        system.env,
                        system.prepare.get(workload),
                        label=system.name,
                    )
                    system.cells.append(cell)


def prepare_limit(workdir: Path, plan: Plan) -> list[Running]:
    targets = {
        "raw ASGI hello": (["benchmarks.apps.hello_asgi:app"], "/", {}),
        "FastAPI hello": (["benchmarks.apps.hello_fastapi:app"], "/", {}),
        "FastAPI hello + lastro": (
            ["benchmarks.apps.hello_lastro:create_app", "--factory"],
            "/health/ready",
            {"LOG_LEVEL": "info", "LOG_FORMAT": "json"},
        ),
    }
    if not plan.smoke:
        targets["FastAPI hello + lastro, LOG_LEVEL=warning"] = (
            ["benchmarks.apps.hello_lastro:create_app", "--factory"],
            "/health/ready",
            {"LOG_LEVEL": "warning", "LOG_FORMAT": "json"},
        )
    empty = workdir / "empty.lua"
    empty.write_text("-- GET /\n")
    running = []
    for name, (target, ready_path, extra) in targets.items():
        port = free_port()
        env = lastro_env(workdir, port, WORKERS, **extra)
        log = workdir / f"{_slug(name)}.log"
        server = TimedServer([str(BIN / "lastro"), "serve", *target], port, ready_path, env, log)
        running.append(Running(name, "limit", server, {"hello": empty}))
    return running


def finish(system: Running) -> dict[str, Any]:
    """The system's results, with the RSS of its workers now, after all its loads."""
    return _system(system.server, system.cells, system.kind, **system.extra)


def _system(server: TimedServer, cells: list[dict[str, Any]], kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "start_to_ready_s": round(server.ready_seconds, 3),
        "ready_path": server.ready_path,
        "rss": server.worker_rss(),
        "cells": cells,
    } | extra


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# --- the baseline ----------------------------------------------------------------------------------------


def ensure_baseline_venv() -> Path:
    """The baseline's own virtual environment, built once from its requirements.txt and reused."""
    requirements = BASELINE_DIR / "requirements.txt"
    stamp = BASELINE_VENV / ".requirements.sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and (BASELINE_VENV / "bin" / "gunicorn").exists():
        return BASELINE_VENV
    logger.info("building the baseline's virtual environment in %s", BASELINE_VENV)
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--clear", str(BASELINE_VENV)], check=True, timeout=120)
    pip = [str(BASELINE_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "-r", str(requirements)], check=True, timeout=600)
    stamp.write_text(digest)
    return BASELINE_VENV


def _baseline_copy(workdir: Path, seed: int) -> Path:
    """The baseline copied as it is, plus this harness's scripts for the workloads it has none for. With a
    seed other than 100k (smoke), the scripts' `max_id` follows it."""
    copy = workdir / "baseline"
    shutil.copytree(BASELINE_DIR, copy)
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    for workload, script in BASELINE_SCRIPTS.items():
        source = script if script.is_absolute() else copy / script
        text = source.read_text()
        if seed != SEED:
            text = text.replace(f"local max_id = {SEED}", f"local max_id = {seed}")
        (copy / f"bench_{workload}.lua").write_text(text)
    return copy


def prepare_baseline(workdir: Path, plan: Plan) -> Running:
    """Seeded and ready to start: gunicorn with uvicorn workers, as the baseline's README runs it."""
    venv = ensure_baseline_venv()
    copy = _baseline_copy(workdir, plan.seed)
    database = workdir / "baseline.db"
    started = time.monotonic()
    subprocess.run(
        [str(venv / "bin" / "python"), "seed_db.py", str(database), str(plan.seed)],
        cwd=copy,
        check=True,
        capture_output=True,
        timeout=300,
    )
    seed_seconds = time.monotonic() - started
    logger.info("baseline: seeded %d orders in %.1f s (its seed_db.py)", plan.seed, seed_seconds)
    port = free_port()
    argv = [
        str(venv / "bin" / "gunicorn"),
        "-k",
        "uvicorn.workers.UvicornWorker",
        "-w",
        str(WORKERS),
        "-b",
        f"{HOST}:{port}",
        "--log-level",
        "warning",
        "--chdir",
        str(copy),
        "seed_app:app",
    ]
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "DATABASE_URL")}
    env["DB_PATH"] = str(database)
    server = TimedServer(argv, port, "/orders/1", env, workdir / "baseline.log")
    scripts = {workload: copy / f"bench_{workload}.lua" for workload in plan.workloads}
    return Running("baseline", "orders", server, scripts, extra={"seed_seconds": round(seed_seconds, 1)})


# --- the orders service on lastro ------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new database `lastro_bench_<hex>` on the local server, dropped at the end."""
    import psycopg
    from psycopg import sql

    name = f"lastro_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        row = admin.execute("SHOW server_version").fetchone()
        logger.info("PostgreSQL %s: database %s", row[0] if row else "?", name)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def migrate_and_seed(url: str, seed: int) -> float:
    """What `lastro db upgrade --migrations examples/orders/migrations` does, then the seed."""
    started = time.perf_counter()
    database = Database(url)
    try:
        migrations.upgrade(database, MIGRATIONS)
    finally:
        database.dispose()
    return time.perf_counter() - started + seed_orders.seed(url, seed)


def fetch_token(url: str) -> str:
    form = urllib.parse.urlencode({"username": seed_orders.USERNAME, "password": seed_orders.PASSWORD})
    request = urllib.request.Request(url + "/api/auth/token", data=form.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        token: str = json.load(response)["access_token"]
        return token


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


def orders_env(workdir: Path, port: int, url: str, workers: int) -> dict[str, str]:
    extra = {
        "DATABASE_URL": url,
        "LOG_LEVEL": "info",
        "LOG_FORMAT": "json",
        "IMAGES_DIR": str(workdir / "images"),
        # The supervisor checks the schema once; the workers then never load Alembic.
        "MIGRATIONS_DIR": str(ROOT / "examples" / "orders" / "migrations"),
    }
    if not is_sqlite_url(url):
        extra |= POSTGRES_POOL
    return lastro_env(workdir, port, workers, **extra)


def orders_server(workdir: Path, url: str, workers: int, log: Path) -> TimedServer:
    port = free_port()
    argv = [str(BIN / "lastro"), "serve", "examples.orders.app:create_app", "--factory"]
    return TimedServer(argv, port, "/health/ready", orders_env(workdir, port, url, workers), log)


def prepare_lastro(stack: contextlib.ExitStack, name: str, workdir: Path, url: str, plan: Plan) -> Running:
    """Migrated, seeded and ready to start; the bearer token is fetched once it runs."""
    seed_seconds = migrate_and_seed(url, plan.seed)
    logger.info("%s: migrated and seeded %d orders in %.1f s", name, plan.seed, seed_seconds)
    patch_targets = PatchTargets(url, workdir / f"patch-ids-{_slug(name)}.txt")
    stack.callback(patch_targets.close)
    server = orders_server(workdir, url, WORKERS, workdir / f"{_slug(name)}.log")
    scripts = {workload: LASTRO_SCRIPTS[workload] for workload in plan.workloads}
    extra = {"seed_seconds": round(seed_seconds, 1)}

    def token(system: Running) -> None:
        system.env["BENCH_TOKEN"] = fetch_token(system.server.url)

    env = {"BENCH_MAX_ID": str(plan.seed)}
    return Running(name, "orders", server, scripts, env, {"patch": patch_targets}, extra, after_start=token)


def start_with_workers(workdir: Path, url: str, workers: int) -> dict[str, Any]:
    """Start the orders service with `workers` workers: time to the first 200 of /health/ready, and to the
    last worker's "Application startup complete" line in the log."""
    log = workdir / f"start-{workers}.log"
    with orders_server(workdir, url, workers, log) as server:
        deadline = time.monotonic() + 15
        all_ready = None
        while time.monotonic() < deadline:
            lines = [
                json.loads(line)
                for line in log.read_text(errors="replace").splitlines()
                if "Application startup complete" in line
            ]
            if len(lines) >= workers:
                stamps = sorted(datetime.fromisoformat(line["timestamp"]) for line in lines)
                all_ready = stamps[workers - 1].timestamp() - server.started_wall
                break
            time.sleep(0.1)
        result = {
            "workers": workers,
            "first_ready_s": round(server.ready_seconds, 3),
            "all_workers_started_s": round(all_ready, 3) if all_ready is not None else None,
            "rss": server.worker_rss(),
        }
    logger.info("start with %d workers: %s", workers, result)
    return result


# --- the profile ------------------------------------------------------------------------------------------

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
    total = idle = 0
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
        centres[classify_stack(frames)] += samples
        functions[re.sub(r":\d+\)$", ")", frames[-1])] += samples
        lines[frames[-1]] += samples

    def shares(counter: Counter[str], key: str) -> list[dict[str, Any]]:
        return [{key: name, "pct": round(100 * n / total, 1)} for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "idle_samples_left_out": idle,
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


def profile_worker(server: TimedServer, env: dict[str, str], plan: Plan) -> dict[str, Any]:
    """py-spy on one worker while wrk drives the mixed workload at 50 connections (a run of its own, not
    one of the measured ones: sampling slows the worker)."""
    py_spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    workers = server.workers()
    if py_spy is None or not workers:
        return {"skipped": "py-spy is not installed" if py_spy is None else "no worker found"}
    seconds = plan.profile_seconds
    raw = server.log.parent / "profile.txt"
    with wrk_script(LASTRO_SCRIPTS["mixed"]) as script:
        argv = wrk_command(server.url, PROFILE_CONNECTIONS, seconds + 3, script)
        wrk = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **env}
        )
        try:
            time.sleep(1.0)
            # The kernel may hand most of wrk's connections to one worker: profile the busy one.
            pid, shares = busiest(workers)
            logger.info(
                "profile: py-spy on worker %d (CPU shares %s), mixed at %d connections, %g s",
                *(pid, shares, PROFILE_CONNECTIONS, seconds),
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
    summary = summarize_profile(raw.read_text())
    load = parse_wrk(stdout.decode())
    summary |= {"worker_pid": pid, "seconds": seconds, "rps_while_sampled": round(load.rps, 1)}
    summary["worker_cpu_shares"] = shares
    logger.info("profile: %s", summary["cost_centres_pct"])
    return summary


# --- targets and the report ------------------------------------------------------------------------------


def cell(results: dict[str, Any], system: str, workload: str, connections: int) -> dict[str, Any] | None:
    found = results["systems"].get(system, {}).get("cells", [])
    return next((c for c in found if c["workload"] == workload and c["connections"] == connections), None)


def _cpu(found: dict[str, Any] | None) -> float | None:
    value = found.get("cpu_ms_per_request") if found else None
    return float(value) if value else None


def _cpu_ratio(ours: dict[str, Any] | None, theirs: dict[str, Any] | None) -> str:
    """How many of our requests fit in the worker CPU time of one of theirs: the throughput ratio two
    CPU-bound systems would have on the same idle cores, and a figure other load on the machine disturbs
    far less than req/s."""
    mine, other = _cpu(ours), _cpu(theirs)
    return f"; by worker CPU per request {other / mine:.2f}x" if mine and other else ""


def _cpu_range(shares: list[float]) -> str:
    if not shares:
        return ""
    low, high = round(100 * min(shares)), round(100 * max(shares))
    return (
        f"; by worker CPU per request {low}%" if low == high else f"; by worker CPU per request {low}-{high}%"
    )


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each performance target, as measured in this run: the figure, the bar, met or missed."""
    top = max(results["connections"])
    rows: list[dict[str, Any]] = []

    def add(name: str, bar: str, measured: str, met: bool) -> None:
        rows.append({"target": name, "bar": bar, "measured": measured, "met": met})

    for system in ORDER_SYSTEMS[1:]:
        for workload in ("mixed", "write"):
            ours, theirs = cell(results, system, workload, top), cell(results, "baseline", workload, top)
            if ours and theirs and theirs["ok_rps"]:
                ratio = ours["ok_rps"] / theirs["ok_rps"]
                text = f"{ratio:.2f}x ({ours['ok_rps']:,.0f} vs {theirs['ok_rps']:,.0f} 2xx/s"
                text += _cpu_ratio(ours, theirs) + ")"
                add(f"{workload} c={top} throughput vs baseline ({system})", ">= 4x", text, ratio >= 4)
        write = cell(results, system, "write", top)
        if write:
            errors = write["non_2xx"] + write["socket_errors"]
            statuses = ", ".join(f"{n} x {code}" for code, n in write.get("statuses", {}).items())
            text = str(errors) + (f" ({statuses})" if statuses else "")
            add(f"write c={top} errors ({system})", "0", text, errors == 0)
            add(f"write c={top} database locked ({system})", "0", str(write["locked"]), write["locked"] == 0)
            p99 = write["p99_ms"]
            add(f"write c={top} p99 ({system})", "<= 100 ms", f"{p99:.1f} ms", p99 <= 100)
    mixed = cell(results, "lastro SQLite", "mixed", top)
    if mixed:
        p99 = mixed["p99_ms"]
        add(f"mixed c={top} p99 (lastro SQLite)", "<= 100 ms", f"{p99:.1f} ms", p99 <= 100)
    for system in ORDER_SYSTEMS[1:]:
        ratios = []
        for c in results["connections"]:
            get, hello = cell(results, system, "get", c), cell(results, "FastAPI hello", "hello", c)
            if get and hello and hello["ok_rps"]:
                ratios.append((c, get["ok_rps"] / hello["ok_rps"], _cpu(get), _cpu(hello)))
        if ratios:
            text = ", ".join(f"c={c}: {100 * r:.0f}%" for c, r, _, _ in ratios)
            text += _cpu_range([hello / get for _, _, get, hello in ratios if get and hello])
            add(
                f"GET by id vs FastAPI hello ({system})",
                ">= 50%",
                text,
                min(r for _, r, _, _ in ratios) >= 0.5,
            )
    costs = []
    for c in results["connections"]:
        wrapped = cell(results, "FastAPI hello + lastro", "hello", c)
        bare = cell(results, "FastAPI hello", "hello", c)
        if wrapped and bare and bare["ok_rps"]:
            costs.append((c, 1 - wrapped["ok_rps"] / bare["ok_rps"], _cpu(wrapped), _cpu(bare)))
    if costs:
        text = ", ".join(f"c={c}: {100 * cost:.0f}%" for c, cost, _, _ in costs)
        text += _cpu_range([1 - bare / wrapped for _, _, wrapped, bare in costs if wrapped and bare])
        add(
            "lastro middleware stack cost vs bare FastAPI hello (LOG_LEVEL=info)",
            "<= 15%",
            text,
            max(x for _, x, _, _ in costs) <= 0.15,
        )
    rss = [
        (system, results["systems"][system]["rss"]["max_mb"])
        for system in ORDER_SYSTEMS[1:]
        if "rss" in results["systems"].get(system, {})
    ]
    if results.get("start_workers"):
        rss.append((f"{START_WORKERS} workers, idle", results["start_workers"]["rss"]["max_mb"]))
    if rss:
        text = ", ".join(f"{system}: {mb:.0f} MB" for system, mb in rss)
        add("worker RSS, largest worker after load", "<= 80 MB", text, max(mb for _, mb in rss) <= 80)
    start = results.get("start_workers")
    if start:
        all_ready = start["all_workers_started_s"]
        text = f"{start['first_ready_s']:.2f} s to the first 200"
        if all_ready is not None:
            text += f", {all_ready:.2f} s until all {start['workers']} workers started"
        name = f"start -> ready, {start['workers']} workers (lastro SQLite)"
        add(name, "<= 2 s", text, start["first_ready_s"] <= 2)
    return rows


def _errors(found: dict[str, Any]) -> str:
    statuses = found.get("statuses") or {}
    detail = f" ({', '.join(f'{code}: {n}' for code, n in statuses.items())})" if statuses else ""
    return f"{found['non_2xx']}{detail} / {found['socket_errors']} / {found['locked']}"


def _limit_table(results: dict[str, Any]) -> list[str]:
    header = ["system", "conns", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket errors", "CPU ms/req"]
    rows = []
    for name, system in results["systems"].items():
        if system.get("kind") != "limit":
            continue
        for c in system["cells"]:
            cpu = _cpu(c)
            rows.append(
                [
                    *(name, c["connections"], _n(c["rps"]), _ms(c["p50_ms"]), _ms(c["p99_ms"])),
                    *(c["non_2xx"], c["socket_errors"], f"{cpu:.3f}" if cpu else "-"),
                ]
            )
    return ["### Limit (hello world, `lastro serve`, 2 workers)", "", *_table(header, rows), ""]


def _orders_tables(results: dict[str, Any]) -> list[str]:
    systems = [name for name in ORDER_SYSTEMS if name in results["systems"]]
    compared = systems[1:] if systems and systems[0] == "baseline" else []
    header = ["workload", "conns"]
    for name in systems:
        header += [f"{name} 2xx/s", "p50", "p99", "non-2xx / sock / locked"]
    header += [f"{name} vs baseline" for name in compared]
    rows, cpu_rows = [], []
    workloads = results.get("workloads", WORKLOADS)
    for workload in workloads:
        for c in results["connections"]:
            row: list[object] = [workload, c]
            found = {name: cell(results, name, workload, c) for name in systems}
            for x in found.values():
                if x is None:
                    row += ["-", "-", "-", "-"]
                else:
                    row += [_n(x["ok_rps"]), _ms(x["p50_ms"]), _ms(x["p99_ms"]), _errors(x)]
            base = found.get("baseline")
            for name in compared:
                x = found[name]
                row.append(f"{x['ok_rps'] / base['ok_rps']:.1f}x" if x and base and base["ok_rps"] else "-")
            rows.append(row)
            cpu_row: list[object] = [workload, c]
            cpu_row += [f"{_cpu(x):.3f}" if _cpu(x) else "-" for x in found.values()]
            for name in compared:
                mine, theirs = _cpu(found[name]), _cpu(base)
                cpu_row.append(f"{theirs / mine:.1f}x" if mine and theirs else "-")
            cpu_rows.append(cpu_row)
    lines = ["### Orders: baseline vs lastro (2 workers; latencies in ms)", "", *_table(header, rows), ""]
    if any(row[2:] != ["-"] * (len(row) - 2) for row in cpu_rows):
        header = ["workload", "conns", *(f"{name} CPU ms/req" for name in systems)]
        header += [f"{name} vs baseline" for name in compared]
        lines += [
            "### Worker CPU per request (user + system time of the workers during the run / requests)",
            "",
            *_table(header, cpu_rows),
            "",
        ]
    return lines


def _profile_lines(profile: dict[str, Any]) -> list[str]:
    idle = profile.get("idle_samples_left_out", 0)
    shares = profile.get("worker_cpu_shares")
    split = f"; the workers' shares of CPU: {shares}" if shares else ""
    return [
        f"### Profile: one lastro SQLite worker, mixed at {PROFILE_CONNECTIONS} connections "
        f"(py-spy, {profile['samples']:,} samples, {idle:,} samples of blocked waits left out, "
        f"{profile['rps_while_sampled']:,.0f} req/s while sampled{split})",
        "",
        *_table(["cost centre", "% of samples"], list(profile["cost_centres_pct"].items())),
        "",
        *_table(
            ["top self-time lines", "%"],
            [[f"`{f['line']}`", f["pct"]] for f in profile.get("top_self_lines", [])],
        ),
        "",
    ]


def report(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Measured {results['date']} on {m['cores']} cores ({m['cpu']}), Python {m['python']}, {m['wrk']}; "
        f"{results['seed']:,} orders; {results['seconds']:g} s per run after {results['warmup']:g} s "
        f"warm-up; load average before / after: {results['load_before']} / {results['load_after']}.",
        "",
        *_limit_table(results),
        *_orders_tables(results),
    ]
    header = ["system", "start -> ready s", "worker RSS sum MB", "max MB", "PSS sum MB", "workers", "seed s"]
    rows = []
    for name, system in results["systems"].items():
        rss = system["rss"]
        pss = f"{rss['pss_sum_mb']:.0f}" if "pss_sum_mb" in rss else "-"
        rows.append(
            [
                *(name, f"{system['start_to_ready_s']:.2f}", f"{rss['sum_mb']:.0f}", f"{rss['max_mb']:.0f}"),
                *(pss, rss["workers"], system.get("seed_seconds", "-")),
            ]
        )
    lines += ["### Per system (RSS read after the loads)", "", *_table(header, rows), ""]
    start = results.get("start_workers")
    if start:
        lines += [
            f"Orders on SQLite with {start['workers']} workers: first 200 of /health/ready after "
            f"{start['first_ready_s']:.2f} s, all workers logged start-up complete after "
            f"{start['all_workers_started_s']} s; RSS per worker {start['rss']['per_worker_mb']} MB "
            f"(PSS {start['rss'].get('pss_per_worker_mb', '-')} MB).",
            "",
        ]
    rows = [
        [t["target"], t["bar"], t["measured"], "met" if t["met"] else "**missed**"] for t in targets(results)
    ]
    lines += ["### Targets", "", *_table(["target", "bar", "measured", ""], rows), ""]
    profile = results["systems"].get("lastro SQLite", {}).get("profile")
    if profile and "cost_centres_pct" in profile:
        lines += _profile_lines(profile)
    elif profile:
        lines += [f"Profile skipped: {profile.get('skipped')}", ""]
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------------------


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


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


PARTS = ("limit", "baseline", "sqlite", "start", "postgres")


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
            if "baseline" in parts:
                systems.append(prepare_baseline(workdir, plan))
            if "sqlite" in parts:
                systems.append(prepare_lastro(stack, "lastro SQLite", workdir, sqlite_url, plan))
            if "postgres" in parts:
                url = stack.enter_context(postgres_database())
                systems.append(prepare_lastro(stack, "lastro PostgreSQL", workdir, url, plan))
            launch(stack, systems, parallel=plan.smoke)
            measure_interleaved(systems, plan)
            results["systems"].update({system.name: finish(system) for system in systems})
            sqlite = next((system for system in systems if system.name == "lastro SQLite"), None)
            if sqlite is not None:
                # Its own run at the end, the other systems idle: sampling slows the worker.
                profile = profile_worker(sqlite.server, sqlite.env, plan)
                results["systems"]["lastro SQLite"]["profile"] = profile
        if "start" in parts:
            if "sqlite" not in parts:
                migrate_and_seed(sqlite_url, plan.seed)
            results["start_workers"] = start_with_workers(workdir, sqlite_url, START_WORKERS)
    results["load_after"] = load_average()
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    return results


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
    if not (BASELINE_DIR / "seed_app.py").exists():
        parser.error(f"no baseline in {BASELINE_DIR}: set BENCH_BASELINE_DIR")
    if args.smoke:
        plan = Plan(
            seed=200, connections=(20,), seconds=1, warmup=0, profile_seconds=1, smoke=True, pause=0.1
        )
        TimedServer.settle = 0.1
    else:
        plan = Plan(args.seed, CONNECTIONS, args.duration, args.warmup, profile_seconds=10, smoke=False)
    if args.connections:
        plan = replace(plan, connections=tuple(int(c) for c in args.connections.split(",")))
    if args.workloads:
        plan = replace(plan, workloads=tuple(w for w in WORKLOADS if w in args.workloads.split(",")))
    parts = [part for part in PARTS if part in args.parts.split(",")]
    if args.no_postgres and "postgres" in parts:
        parts.remove("postgres")
    if "baseline" in parts:
        ensure_baseline_venv()  # once, before anything is timed
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
