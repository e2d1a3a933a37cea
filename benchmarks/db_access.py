"""Sync or async database access, chosen by measurement, on SQLite and PostgreSQL.

    .venv/bin/python -m benchmarks.db_access                    # 2 rounds, about 10 minutes
    .venv/bin/python -m benchmarks.db_access --smoke            # each strategy once, about 20 seconds
    .venv/bin/python -m benchmarks.db_access --report out.json  # the tables again from a --json file

One FastAPI app (`benchmarks/apps/db_access_app.py`) under `uvicorn --workers 2`, with three ways to reach
the database, picked by `BENCH_STRATEGY`:

- async: async SQLAlchemy 2.x (`create_async_engine`) over aiosqlite / asyncpg, `async def` endpoints;
- sync: a sync SQLAlchemy engine in `def` endpoints, run by FastAPI's thread pool;
- lastro: `lastro.ReadUnit` / `lastro.WriteUnit` (inline reads + one writer thread on SQLite, one thread
  hop per unit of work on PostgreSQL).

Each gets read (GET one row by primary key of 100k), write (INSERT one row) and mixed (80/20) at 50 and 200
connections, `wrk -t1`, after a 1 s warm-up. Strategies are interleaved, in reverse order every other round,
so a burst of load from elsewhere on the machine hits one run rather than one strategy. Besides req/s and
latency, each run records the CPU time the 2 workers spent per request (all their threads, from /proc), which
a busy shared machine disturbs far less than throughput, and how often another session's wrk was running.

Two side checks: `async` and `sync` with a `Session` per request instead of a plain connection; lastro on
SQLite with an `await asyncio.sleep(0)` after each read unit, and with reads on threads instead of inline.

SQLite is a WAL file in a temporary directory; PostgreSQL is `--pg-url` (default the local test server),
table `bench_db_access`, dropped at the end. The report goes to stdout as Markdown; raw numbers to `--json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.apps.db_access_app import TABLE
from benchmarks.harness import Server, free_port
from benchmarks.servers import LUA, _ms, _n, _table, _uvicorn, _version, load_average, machine, run_wrk
from lastro.db import sqlite

logger = logging.getLogger("benchmarks.db_access")

TARGET = "benchmarks.apps.db_access_app:create_app"
WORKERS = 2
ROWS = 100_000  # the Lua scripts read ids 1..100000
CONNECTIONS = (50, 200)
WORKLOADS = {
    "read": LUA / "sqlite_read.lua",
    "mixed": LUA / "sqlite_mixed.lua",
    "write": LUA / "sqlite_write.lua",
}
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PACKAGES = ["lastro", "sqlalchemy", "greenlet", "aiosqlite", "asyncpg", "psycopg", "pysqlite3"]
PACKAGES += ["fastapi", "starlette", "uvicorn", "uvloop", "httptools", "anyio"]


@dataclass(frozen=True)
class Variant:
    name: str
    strategy: str
    api: str = "connection"
    reads: str = "default"  # lastro only: "yield" after each read unit, or "threads" for SQLite reads


MAIN = (Variant("async", "async"), Variant("sync", "sync"), Variant("lastro", "lastro"))
MAIN_NAMES = tuple(variant.name for variant in MAIN)


@dataclass(frozen=True)
class SideCheck:
    title: str
    variants: tuple[Variant, ...]
    backends: tuple[str, ...]
    cells: tuple[tuple[str, int], ...]


SIDE_CHECKS = (
    SideCheck(
        "a `Session` per request instead of a plain connection",
        (Variant("async + Session", "async", "session"), Variant("sync + Session", "sync", "session")),
        ("SQLite", "PostgreSQL"),
        (("read", 50),),
    ),
    SideCheck(
        "where lastro runs SQLite reads",
        (
            Variant("lastro, sleep(0) after read", "lastro", reads="yield"),
            Variant("lastro, reads on threads", "lastro", reads="threads"),
        ),
        ("SQLite",),
        (("read", 50), ("read", 200)),
    ),
)


# --- the databases ---------------------------------------------------------------------------------------


def seed_sqlite(path: Path, rows: int) -> str:
    """A fresh WAL file with `rows` rows, through the driver lastro uses; returns the URL."""
    connection = sqlite.driver().connect(str(path), isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL)"
        )
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            f"INSERT INTO {TABLE} (id, name, price) VALUES (?, ?, ?)",
            ((i, f"item-{i}", (i % 1000) / 10) for i in range(1, rows + 1)),
        )
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return f"sqlite:///{path}"


def _pg(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=3)


def seed_postgres(url: str, rows: int) -> str | None:
    """`bench_db_access` with `rows` rows, or None (and a warning) when the server does not answer."""
    try:
        connection = _pg(url)
    except Exception as error:
        logger.warning("PostgreSQL at %s: %s; skipping it", url, error)
        return None
    with connection:
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        connection.execute(
            f"CREATE TABLE {TABLE} (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
            "name text NOT NULL, price double precision NOT NULL)"
        )
        connection.execute(
            f"INSERT INTO {TABLE} (name, price) SELECT 'item-' || i, (i %% 1000) / 10.0 "
            "FROM generate_series(1, %s) AS i",
            (rows,),
        )
        connection.execute(f"VACUUM ANALYZE {TABLE}")
    return url


def drop_postgres(url: str) -> None:
    with _pg(url) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")


def postgres_info(url: str) -> dict[str, str]:
    with _pg(url) as connection:
        settings = ("server_version", "max_connections", "shared_buffers", "synchronous_commit", "fsync")
        return {name: str(connection.execute(f"SHOW {name}").fetchone()[0]) for name in settings}


def table_rows(backend: str, url: str) -> int:
    if backend == "PostgreSQL":
        with _pg(url) as connection:
            return int(connection.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])
    connection = sqlite.driver().connect(url.removeprefix("sqlite:///"))
    try:
        return int(connection.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])
    finally:
        connection.close()


# --- running ---------------------------------------------------------------------------------------------


def server_for(variant: Variant, url: str, workdir: Path) -> Server:
    port = free_port()
    env = dict(os.environ)
    env.update(BENCH_STRATEGY=variant.strategy, BENCH_API=variant.api, BENCH_DB_URL=url)
    env["BENCH_LASTRO_READS"] = variant.reads
    env["BENCH_WORKERS"] = str(WORKERS)
    argv = [*_uvicorn(TARGET, port), "--factory"]
    log = workdir / f"{variant.strategy}-{variant.api}-{variant.reads}.log"
    return Server(argv, port, "/items/1", env, log)


@contextlib.contextmanager
def started(servers: Sequence[Server]) -> Iterator[Sequence[Server]]:
    """Start `servers` at the same time (for --smoke, where start-up dominates), stop them all at the end."""
    with contextlib.ExitStack() as stack:
        for server in servers:
            stack.push(server.__exit__)
        with ThreadPoolExecutor(len(servers)) as pool:
            list(pool.map(Server.__enter__, servers))
        yield servers


def measure_cells(
    server: Server,
    variant: Variant,
    backend: str,
    cells: Sequence[tuple[str, int]],
    seconds: float,
    warmup: float,
    round_: int,
) -> list[dict[str, Any]]:
    logger.info("round %d, %s: %s", round_, backend, variant.name)
    rows: list[dict[str, Any]] = []
    for workload, connections in cells:
        script = WORKLOADS[workload]
        if warmup > 0:
            run_wrk(server.url, connections, warmup, script)
        with Neighbours() as neighbours:
            before = cpu_seconds(server)
            load = run_wrk(server.url, connections, seconds, script)
            cpu = cpu_seconds(server) - before
        cpu_us = cpu / load.requests * 1e6 if load.requests else 0.0
        logger.info(
            "  %-5s c=%-3d %6.0f req/s  p50 %6.2f ms  p99 %7.2f ms err %d CPU %4.0f us/req other wrk %.0f%%",
            workload,
            connections,
            load.rps,
            load.p50_ms,
            load.p99_ms,
            load.non_2xx + load.socket_errors,
            cpu_us,
            neighbours.share * 100,
        )
        key: dict[str, Any] = {"backend": backend, "variant": variant.name, "strategy": variant.strategy}
        key |= {"api": variant.api, "reads": variant.reads, "workload": workload}
        key |= {"connections": connections, "round": round_}
        extra = {"cpu_us_per_request": round(cpu_us, 1), "foreign_wrk": neighbours.share}
        rows.append(key | load.as_dict() | extra | {"load1": neighbours.load1})
    return rows


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(server: Server) -> float:
    """User + system CPU time of the server and its worker processes (all threads), in seconds."""
    assert server.process is not None
    root, ticks = server.process.pid, 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(entry.name) == root or int(fields[1]) == root:
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / TICK


class Neighbours:
    """While a cell runs, how often another session's wrk was running too (this machine is shared)."""

    INTERVAL = 0.25

    def __init__(self) -> None:
        self.samples = self.busy = 0
        self.load1 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def share(self) -> float:
        return round(self.busy / self.samples, 2) if self.samples else 0.0

    def __enter__(self) -> Neighbours:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.load1 = float(load_average().split()[0])

    def _sample(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            self.samples += 1
            self.busy += foreign_wrk() > 0


def foreign_wrk() -> int:
    """wrk processes that are not this process's children."""
    count, me = 0, os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            count += name == "wrk" and parent != me
    return count


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    seconds = 1 if args.smoke else args.duration
    warmup = 0.0 if args.smoke else 1.0
    rounds = 1 if args.smoke else args.rounds
    if args.smoke:
        cells: list[tuple[str, int]] = [("mixed", CONNECTIONS[0])]
    else:
        cells = [(workload, c) for workload in WORKLOADS for c in CONNECTIONS]

    backends: dict[str, str] = {"SQLite": seed_sqlite(workdir / "db_access.db", ROWS)}
    results: dict[str, Any] = {"duration": seconds, "warmup": warmup, "rounds": rounds}
    rows: list[dict[str, Any]] = []
    results["rows"] = rows
    pg_url = None if args.no_postgres else seed_postgres(args.pg_url, ROWS)
    try:
        if pg_url:
            backends["PostgreSQL"] = pg_url
            results["postgres"] = postgres_info(pg_url)
        for round_ in range(1, rounds + 1):
            for backend, url in backends.items():
                order = MAIN if round_ % 2 else MAIN[::-1]
                if args.smoke:  # start-up dominates: all servers of a backend at once
                    servers = [server_for(variant, url, workdir) for variant in order]
                    with started(servers):
                        for variant, server in zip(order, servers, strict=True):
                            rows += measure_cells(server, variant, backend, cells, seconds, warmup, round_)
                    continue
                for variant in order:
                    with server_for(variant, url, workdir) as server:
                        rows += measure_cells(server, variant, backend, cells, seconds, warmup, round_)
                for check in SIDE_CHECKS:
                    for variant in check.variants if backend in check.backends else ():
                        with server_for(variant, url, workdir) as server:
                            rows += measure_cells(
                                server, variant, backend, check.cells, seconds, warmup, round_
                            )
        results["rows_at_end"] = {backend: table_rows(backend, url) for backend, url in backends.items()}
    finally:
        if pg_url:
            drop_postgres(pg_url)
    return results


# --- the report ------------------------------------------------------------------------------------------


def _runs(rows: list[dict[str, Any]], **key: Any) -> list[dict[str, Any]]:
    found = [row for row in rows if all(row.get(name, "default") == value for name, value in key.items())]
    return sorted(found, key=lambda row: row["rps"])


DISTURBED = 0.25  # share of a run's samples that saw another session's wrk


def _cell(runs: list[dict[str, Any]]) -> tuple[str, str]:
    best, worst = runs[-1], runs[0]
    rps = _n(best["rps"]) + ("*" if best.get("foreign_wrk", 0) >= DISTURBED else "")
    rps += f" ({_n(worst['rps'])})" if len(runs) > 1 else ""
    return rps, f"{_ms(best['p50_ms'])} / {_ms(best['p99_ms'])}"


def _cpu(runs: list[dict[str, Any]]) -> float:
    return float(min(run.get("cpu_us_per_request", 0.0) for run in runs))


def report(results: dict[str, Any]) -> str:
    rows: list[dict[str, Any]] = results["rows"]
    lines = [
        f"Load average before / after: {results['load_before']} / {results['load_after']}; "
        f"{results['rounds']} round(s) of {results['duration']} s per cell; "
        f"wall time {results['wall_seconds']} s",
        "",
    ]
    disturbed = sum(row.get("foreign_wrk", 0) >= DISTURBED for row in rows)
    lines += [
        f"{disturbed} of {len(rows)} runs overlapped another session's wrk for at least "
        f"{DISTURBED:.0%} of their time; * marks a best run that did.",
        "",
    ]
    for backend in dict.fromkeys(row["backend"] for row in rows):
        main = [row for row in rows if row["backend"] == backend and row["variant"] in MAIN_NAMES]
        names = [variant.name for variant in MAIN if any(row["variant"] == variant.name for row in main)]
        header = ["workload", "c"]
        for name in names:
            header += [f"{name} req/s", "p50 / p99"]
        header += [f"{name} / lastro" for name in names if name != "lastro"] + ["errors"]
        cpu_header = ["workload", "c", *(f"{name} us/req" for name in names)]
        cpu_header += [f"{name} / lastro" for name in names if name != "lastro"]
        table, cpu_table = [], []
        for workload in dict.fromkeys(row["workload"] for row in main):
            for connections in sorted({row["connections"] for row in main if row["workload"] == workload}):
                cells: list[object] = [workload, connections]
                cpu_cells: list[object] = [workload, connections]
                best: dict[str, float] = {}
                cpu: dict[str, float] = {}
                errors = 0
                for name in names:
                    runs = _runs(main, variant=name, workload=workload, connections=connections)
                    cells += _cell(runs)
                    best[name] = runs[-1]["rps"]
                    cpu[name] = _cpu(runs)
                    cpu_cells.append(f"{cpu[name]:.0f}")
                    errors += sum(run["non_2xx"] + run["socket_errors"] for run in runs)
                for name in names:
                    if name != "lastro":
                        cells.append(f"{best[name] / best['lastro']:.2f}" if best.get("lastro") else "-")
                        cpu_cells.append(f"{cpu[name] / cpu['lastro']:.2f}" if cpu.get("lastro") else "-")
                cells.append(errors)
                table.append(cells)
                cpu_table.append(cpu_cells)
        lines += [f"**{backend}** (best of the rounds by req/s, worst in brackets; p50 / p99 in ms)", ""]
        lines += [*_table(header, table), ""]
        lines += [
            f"**{backend}: CPU per request** of the 2 workers, all threads (lowest of the rounds, in us; "
            "the database server's own CPU is not counted)",
            "",
            *_table(cpu_header, cpu_table),
            "",
        ]

    for check in SIDE_CHECKS:
        names = [variant.name for variant in check.variants]
        side = [row for row in rows if row["variant"] in names]
        if not side:
            continue
        header = ["backend", "workload", "c", "variant", "req/s", "p50 / p99", "CPU us/req"]
        header += ["baseline", "req/s", "p50 / p99", "CPU us/req"]
        table = []
        for row in side:
            if row["round"] != 1:
                continue
            key = {"backend": row["backend"], "workload": row["workload"], "connections": row["connections"]}
            runs = _runs(side, variant=row["variant"], **key)
            baseline = _runs(rows, strategy=row["strategy"], api="connection", reads="default", **key)
            base_name = baseline[-1]["variant"] if baseline else "-"
            base_cells = [*_cell(baseline), f"{_cpu(baseline):.0f}"] if baseline else ["-", "-", "-"]
            cells = [row["backend"], row["workload"], row["connections"], row["variant"]]
            table.append([*cells, *_cell(runs), f"{_cpu(runs):.0f}", base_name, *base_cells])
        lines += [
            f"**Side check: {check.title}** (best of the rounds; CPU: lowest)",
            "",
            *_table(header, table),
            "",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=5, help="seconds of each measured wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over every strategy")
    parser.add_argument("--smoke", action="store_true", help="each strategy once, mixed, 1 s (about 20 s)")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    parser.add_argument("--report", type=Path, default=None, help="only print the report of a --json file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.report:
        sys.stdout.write(report(json.loads(args.report.read_text())) + "\n")
        return 0

    began = time.monotonic()
    about = machine()
    about["versions"] = {name: _version(name) for name in PACKAGES}
    about["sqlite_pysqlite3"] = sqlite.version()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="lastro-db-access-") as tmp:
        results = run(args, Path(tmp))
    results |= {"machine": about, "load_before": load_before, "load_after": load_average()}
    results["wall_seconds"] = round(time.monotonic() - began, 1)

    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(report(results) + "\n")
    logger.info("done in %.0f s", results["wall_seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
