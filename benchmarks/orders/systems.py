"""The systems of the orders benchmark: the hello worlds that mark the limit, and the orders service under
`lastro serve` on SQLite and on PostgreSQL, each prepared (migrated, seeded), started and read back.

The baseline and the ceiling, the other sides of the comparison, are `baseline.py`. Each system is a
`Running` whose server (`benchmarks/harness.py`) times its own start; `launch` starts a group, `finish` reads
its results.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from benchmarks import seed_orders
from benchmarks.harness import BIN, ROOT, Server, free_port, lastro_env
from benchmarks.orders.workloads import LASTRO_SCRIPTS, PatchTargets, Plan, Running
from lastro.db import migrations
from lastro.db.engine import Database

logger = logging.getLogger("benchmarks.orders")

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MIGRATIONS = ROOT / "examples" / "orders" / "migrations"

WORKERS = 2
START_WORKERS = 4

LIMIT_SYSTEMS = ("raw ASGI hello", "FastAPI hello", "FastAPI hello + lastro")
COMPARATOR_SYSTEMS = ("baseline", "ceiling")
LASTRO_SYSTEMS = ("lastro SQLite", "lastro PostgreSQL")
ORDER_SYSTEMS = (*COMPARATOR_SYSTEMS, *LASTRO_SYSTEMS)


def launch(stack: contextlib.ExitStack, systems: Sequence[Running], parallel: bool) -> None:
    """Start the servers one after another (each start timed alone), or all at once (--smoke: start
    times then only show the process works); each is stopped when `stack` closes."""
    for system in systems:
        logger.info("starting %s", system.name)
    if parallel and len(systems) > 1:
        with ThreadPoolExecutor(len(systems)) as pool:
            futures = [pool.submit(system.server.__enter__) for system in systems]
        errors: list[BaseException] = []
        for system, future in zip(systems, futures, strict=True):
            error = future.exception()
            if error is None:
                stack.push(system.server.__exit__)
            else:
                errors.append(error)
        if errors:
            raise errors[0]
    else:
        for system in systems:
            stack.enter_context(system.server)
    for system in systems:
        if system.after_start is not None:
            system.after_start(system)


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
        server = Server([str(BIN / "lastro"), "serve", *target], port, ready_path, env, log)
        running.append(Running(name, "limit", server, {"hello": empty}))
    return running


def finish(system: Running) -> dict[str, Any]:
    """The system's results, with the RSS of its workers now, after all its loads."""
    return _system(system.server, system.cells, system.kind, **system.extra)


def _system(server: Server, cells: list[dict[str, Any]], kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "start_to_ready_s": round(server.ready_seconds, 3),
        "ready_path": server.ready_path,
        "rss": server.worker_rss(),
        "cells": cells,
    } | extra


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@contextlib.contextmanager
def postgres_database(template: str | None = None) -> Iterator[str]:
    """A new database `lastro_bench_<hex>` on the local server (a copy of the database of the URL
    `template`, if given), dropped at the end."""
    import psycopg
    from psycopg import sql

    name = f"lastro_bench_{uuid.uuid4().hex[:12]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(make_url(template).database or ""))
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(create)
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


def orders_env(workdir: Path, port: int, url: str, workers: int) -> dict[str, str]:
    extra = {
        "DATABASE_URL": url,
        "LOG_LEVEL": "info",
        "LOG_FORMAT": "json",
        "IMAGES_DIR": str(workdir / "images"),
        # The supervisor checks the schema once; the workers then never load Alembic.
        "MIGRATIONS_DIR": str(ROOT / "examples" / "orders" / "migrations"),
    }
    return lastro_env(workdir, port, workers, **extra)


def orders_server(workdir: Path, url: str, workers: int, log: Path) -> Server:
    port = free_port()
    argv = [str(BIN / "lastro"), "serve", "examples.orders.app:create_app", "--factory"]
    return Server(argv, port, "/health/ready", orders_env(workdir, port, url, workers), log)


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
