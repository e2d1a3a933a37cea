"""Choose the process manager by measurement, and show what the in-flight cap does under overload.

    .venv/bin/python -m benchmarks.servers              # the full run, about 9 minutes
    .venv/bin/python -m benchmarks.servers --smoke      # one of each kind, about 15 seconds

Three parts, all on loopback, each server started on a free port and stopped with SIGTERM:

1. Servers: gunicorn + UvicornWorker, `uvicorn --workers`, granian, hypercorn and `lastro serve`, each with
   2 workers, on a raw ASGI and a FastAPI "hello", at 50 and 200 connections.
2. Worker sweep: `lastro serve` of the SQLite app with 1..5 workers, read / mixed / write at 50 connections.
3. Back-pressure: a `lastro.create_app` service burning ~2 ms of CPU per request, 1 worker, 200 connections,
   with back-pressure off, with only the in-flight cap, and with the defaults (cap and loop-lag shedding).

Load comes from `wrk -t1 --latency` (plus, in part 3, a small probe that times 200s and 503s apart). The
report goes to stdout as Markdown; the raw numbers to `--json`. wrk shares the machine's cores with the
servers, so compare ratios within one run rather than absolute numbers across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import logging
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.apps import sqlite_app
from benchmarks.harness import BIN, HOST, ROOT, Server, free_port, lastro_env
from lastro.settings import Settings
from lastro.workers import resolve_workers

logger = logging.getLogger("benchmarks.servers")

LUA = ROOT / "benchmarks" / "lua"

WORKERS = 2
CONNECTIONS = (50, 200)
SWEEP_WORKERS = (1, 2, 3, 4, 5)
SWEEP_CONNECTIONS = 50
SWEEP_ROWS = 100_000
PRESSURE_CONNECTIONS = 200
PRESSURE_PROBE_CONNECTIONS = 20  # of the 200: timed one by one, so 200s and 503s get their own latency
WRK_TIMEOUT = "10s"  # wrk's default 2 s would drop the slowest responses from the percentiles

# wrk runs this after the test: one line with exact counts, instead of parsing its rounded text.
DONE_HOOK = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT %d %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# --- measuring -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """One wrk run: throughput, latency percentiles of every response, and what went wrong."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int  # connect + read + write errors, and wrk timeouts
    timeouts: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok_rps(self) -> float:
        return (self.requests - self.non_2xx) / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rps": round(self.rps, 1), "ok_rps": round(self.ok_rps, 1)}


def wrk_command(url: str, connections: int, seconds: float, script: Path) -> list[str]:
    return [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        "-s",
        str(script),
        url,
    ]


def parse_wrk(output: str) -> Load:
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            requests, duration_us, p50, p99, connect, read, write, status, timeout = map(
                int, line.split()[1:]
            )
            return Load(
                requests=requests,
                seconds=duration_us / 1e6,
                p50_ms=p50 / 1000,
                p99_ms=p99 / 1000,
                non_2xx=status,
                socket_errors=connect + read + write + timeout,
                timeouts=timeout,
            )
    raise RuntimeError(f"wrk printed no result line:\n{output}")


@contextlib.contextmanager
def wrk_script(workload: Path | None) -> Iterator[Path]:
    """A script for `wrk -s`: the workload's own Lua (if any) followed by the result hook."""
    text = (workload.read_text() if workload else "") + DONE_HOOK
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as handle:
        handle.write(text)
        handle.flush()
        yield Path(handle.name)


def run_wrk(url: str, connections: int, seconds: float, workload: Path | None = None) -> Load:
    with wrk_script(workload) as script:
        argv = wrk_command(url, connections, seconds, script)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=True)
    return parse_wrk(done.stdout)


def measure(url: str, connections: int, seconds: float, warmup: float, workload: Path | None = None) -> Load:
    if warmup > 0:
        run_wrk(url, connections, warmup, workload)
    load = run_wrk(url, connections, seconds, workload)
    logger.info(
        "  %-6s c=%-3d %8.0f req/s  p50 %7.2f ms  p99 %8.2f ms  non-2xx %d  socket errors %d",
        workload.stem.removeprefix("sqlite_") if workload else "GET /",
        connections,
        load.rps,
        load.p50_ms,
        load.p99_ms,
        load.non_2xx,
        load.socket_errors,
    )
    return load


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of `values` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class ProbeSamples:
    """Latency in seconds of each response the probe received, by status."""

    by_status: dict[int, list[float]] = field(default_factory=dict)
    errors: int = 0

    def add(self, status: int, seconds: float) -> None:
        self.by_status.setdefault(status, []).append(seconds)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            str(status): {
                "count": len(values),
                "p50_ms": round(percentile(values, 50) * 1000, 2),
                "p99_ms": round(percentile(values, 99) * 1000, 2),
            }
            for status, values in sorted(self.by_status.items())
        }


async def _probe_connection(port: int, path: str, deadline: float, samples: ProbeSamples) -> None:
    """Send GETs one after another on one keep-alive connection until `deadline`, timing each."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            samples.errors += 1
            await asyncio.sleep(0.05)
            continue
        try:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                samples.add(status, time.perf_counter() - start)
                if b"connection: close" in head.lower():
                    break
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            samples.errors += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _load_with_probe(
    port: int, path: str, connections: int, seconds: float, probes: int
) -> tuple[Load, ProbeSamples]:
    samples = ProbeSamples()
    with wrk_script(None) as script:
        argv = wrk_command(f"http://{HOST}:{port}{path}", connections - probes, seconds, script)
        wrk = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        deadline = time.monotonic() + seconds
        await asyncio.wait_for(
            asyncio.gather(*(_probe_connection(port, path, deadline, samples) for _ in range(probes))),
            timeout=seconds + 30,
        )
        stdout, stderr = await asyncio.wait_for(wrk.communicate(), timeout=30)
    if wrk.returncode != 0:
        raise RuntimeError(f"wrk failed: {stderr.decode()}")
    return parse_wrk(stdout.decode()), samples


def measure_with_probe(
    port: int, path: str, connections: int, seconds: float, warmup: float
) -> tuple[Load, ProbeSamples]:
    """`connections` in all: wrk drives most of them, the probe times its own requests status by status."""
    probes = min(PRESSURE_PROBE_CONNECTIONS, connections // 2)
    if warmup > 0:
        run_wrk(f"http://{HOST}:{port}{path}", connections, warmup)
        time.sleep(1.0)  # let the queue of the warm-up drain
    load, samples = asyncio.run(_load_with_probe(port, path, connections, seconds, probes))
    logger.info(
        "  %-10s c=%-3d %8.0f req/s, %.0f of them 200  non-2xx %d  socket errors %d  probe %s",
        path,
        connections,
        load.rps,
        load.ok_rps,
        load.non_2xx,
        load.socket_errors,
        samples.summary(),
    )
    return load, samples


# --- servers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A server or process manager, as a command line for a target `MODULE:APP` on a port."""

    name: str
    package: str
    command: Callable[[str, int], list[str]]


def _gunicorn(target: str, port: int) -> list[str]:
    return [
        str(BIN / "gunicorn"),
        "-k",
        "uvicorn_worker.UvicornWorker",
        "-w",
        str(WORKERS),
        "-b",
        f"{HOST}:{port}",
        "--log-level",
        "warning",
        target,
    ]


def _uvicorn(target: str, port: int) -> list[str]:
    return [
        str(BIN / "uvicorn"),
        target,
        "--workers",
        str(WORKERS),
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


def _granian(target: str, port: int) -> list[str]:
    return [
        str(BIN / "granian"),
        "--interface",
        "asgi",
        "--workers",
        str(WORKERS),
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        target,
    ]


def _hypercorn(target: str, port: int) -> list[str]:
    # The uvloop worker class: uvicorn and granian pick uvloop by themselves.
    return [
        str(BIN / "hypercorn"),
        "--workers",
        str(WORKERS),
        "-k",
        "uvloop",
        "-b",
        f"{HOST}:{port}",
        "--log-level",
        "warning",
        target,
    ]


def _lastro(target: str, port: int) -> list[str]:
    return [str(BIN / "lastro"), "serve", target]


CANDIDATES = (
    Candidate("gunicorn + UvicornWorker", "gunicorn", _gunicorn),
    Candidate("uvicorn --workers", "uvicorn", _uvicorn),
    Candidate("granian", "granian", _granian),
    Candidate("hypercorn", "hypercorn", _hypercorn),
    Candidate("lastro serve", "lastro", _lastro),
)
APPS = {
    "raw ASGI hello": "benchmarks.apps.hello_asgi:app",
    "FastAPI hello": "benchmarks.apps.hello_fastapi:app",
}


# --- the three parts -------------------------------------------------------------------------------------


def compare_servers(
    workdir: Path, seconds: float, warmup: float, rounds: int, smoke: bool
) -> list[dict[str, Any]]:
    """Every candidate on every app, `rounds` times over, so that a burst of load elsewhere on the machine
    hits one round of one candidate rather than deciding the comparison."""
    logger.info("servers: %d workers each, %d round(s)", WORKERS, rounds)
    candidates = [c for c in CANDIDATES if c.package == "lastro"] if smoke else list(CANDIDATES)
    apps = dict(list(APPS.items())[:1]) if smoke else APPS
    connections = CONNECTIONS[:1] if smoke else CONNECTIONS
    rows: list[dict[str, Any]] = []
    for round_ in range(1, rounds + 1):
        for app_name, target in apps.items():
            for candidate in candidates:
                port = free_port()
                logger.info("round %d: %s on %s", round_, candidate.name, app_name)
                env = (
                    lastro_env(workdir, port, WORKERS) if candidate.package == "lastro" else dict(os.environ)
                )
                log = workdir / f"{candidate.package}.log"
                with Server(candidate.command(target, port), port, "/", env, log) as server:
                    for conns in connections:
                        load = measure(server.url + "/", conns, seconds, warmup)
                        key = {"server": candidate.name, "app": app_name, "connections": conns}
                        rows.append(key | {"round": round_} | load.as_dict())
    return rows


WORKLOADS = {
    "read": LUA / "sqlite_read.lua",
    "mixed": LUA / "sqlite_mixed.lua",
    "write": LUA / "sqlite_write.lua",
}


def sweep_workers(workdir: Path, seconds: float, warmup: float, smoke: bool) -> list[dict[str, Any]]:
    logger.info("worker sweep: SQLite app under lastro serve, %d connections", SWEEP_CONNECTIONS)
    counts = (2,) if smoke else SWEEP_WORKERS
    workloads = dict(list(WORKLOADS.items())[:1]) if smoke else WORKLOADS
    rows: list[dict[str, Any]] = []
    for workers in counts:
        database = workdir / f"sweep-{workers}.db"
        sqlite_app.seed(str(database), SWEEP_ROWS)
        port = free_port()
        env = lastro_env(workdir, port, workers, BENCH_DB=str(database))
        argv = _lastro("benchmarks.apps.sqlite_app:app", port)
        logger.info("%d worker(s)", workers)
        with Server(argv, port, "/items/1", env, workdir / f"sweep-{workers}.log") as server:
            for workload, script in workloads.items():
                load = measure(server.url, SWEEP_CONNECTIONS, seconds, warmup, script)
                rows.append({"workers": workers, "workload": workload} | load.as_dict())
    return rows


def back_pressure(workdir: Path, seconds: float, warmup: float, smoke: bool) -> list[dict[str, Any]]:
    default_cap = Settings.model_fields["MAX_IN_FLIGHT"].default
    default_lag = Settings.model_fields["MAX_LOOP_LAG"].default
    logger.info("back-pressure: 1 worker, %d connections, ~2 ms CPU per request", PRESSURE_CONNECTIONS)
    caps: list[tuple[str, dict[str, str]]] = [
        ("off", {"MAX_IN_FLIGHT": "0", "MAX_LOOP_LAG": "0"}),
        (f"MAX_IN_FLIGHT={default_cap} only", {"MAX_LOOP_LAG": "0"}),
        (f"defaults (MAX_IN_FLIGHT={default_cap}, MAX_LOOP_LAG={default_lag:g})", {}),
    ]
    paths = ("/burn-sync",) if smoke else ("/burn", "/burn-sync")
    rows: list[dict[str, Any]] = []
    for label, extra in caps[1:] if smoke else caps:
        port = free_port()
        env = lastro_env(workdir, port, 1, **extra)
        argv = [*_lastro("benchmarks.apps.backpressure_app:create_app", port), "--factory"]
        logger.info("%s", label)
        with Server(argv, port, "/burn", env, workdir / "pressure.log"):
            for path in paths:
                load, probe = measure_with_probe(port, path, PRESSURE_CONNECTIONS, seconds, warmup)
                rows.append(
                    {"cap": label, "endpoint": path, "probe": probe.summary(), "probe_errors": probe.errors}
                    | load.as_dict()
                )
                time.sleep(1.0)  # requests still queued in the worker finish before the next run
    return rows


# --- the report ------------------------------------------------------------------------------------------

# What each manager does, from its documentation and its source at the versions measured.
FEATURES: dict[str, dict[str, str]] = {
    "respawn a dead worker": {
        "gunicorn + UvicornWorker": "yes",
        "uvicorn --workers": "yes (also kills a worker silent for `--timeout-worker-healthcheck`)",
        "granian": "opt-in `--respawn-failed-workers`; gives up on a crash within 5.5 s of a respawn",
        "hypercorn": "no: a worker exiting non-zero stops the server (one exiting 0 is replaced)",
        "lastro serve": "yes (uvicorn's, with the wait sliced so an exit is noticed at once)",
    },
    "recycle after N requests + jitter": {
        "gunicorn + UvicornWorker": "yes `--max-requests`, `--max-requests-jitter`",
        "uvicorn --workers": "yes `--limit-max-requests`, `--limit-max-requests-jitter` (0.41+)",
        "granian": "no: by age `--workers-lifetime` (>= 60 s) or memory `--workers-max-rss` instead",
        "hypercorn": "yes `--max-requests`, `--max-requests-jitter`",
        "lastro serve": "yes `MAX_REQUESTS`, `MAX_REQUESTS_JITTER`",
    },
    "graceful SIGTERM": {
        "gunicorn + UvicornWorker": "yes, `--graceful-timeout` (30 s)",
        "uvicorn --workers": "yes, `--timeout-graceful-shutdown` (default: wait without limit)",
        "granian": "yes, `--workers-kill-timeout` (default: wait without limit)",
        "hypercorn": "yes, `--graceful-timeout` (3 s)",
        "lastro serve": "yes, `GRACEFUL_TIMEOUT` (30 s)",
    },
    "SIGHUP rolling reload": {
        "gunicorn + UvicornWorker": "yes: new workers, then the old ones stop gracefully",
        "uvicorn --workers": "yes: one by one, each replacement ready before the old one stops",
        "granian": "yes: one by one, each old one stopped `--respawn-interval` (3.5 s) later, unchecked",
        "hypercorn": "not rolling (0.18): all workers stop, then all start; the socket stays open",
        "lastro serve": "yes (uvicorn's)",
    },
    "Windows": {
        "gunicorn + UvicornWorker": "no (Unix only)",
        "uvicorn --workers": "yes (spawn; CTRL_BREAK as SIGTERM; no SIGHUP on Windows)",
        "granian": "1 worker only: `--workers` above 1 falls back to 1",
        "hypercorn": "yes (spawn; SIGBREAK)",
        "lastro serve": "yes (uvicorn's)",
    },
    "backlog / concurrency limit": {
        "gunicorn + UvicornWorker": "`--backlog` 2048; no cap (`--worker-connections` not passed to uvicorn)",
        "uvicorn --workers": "`--backlog` 2048; `--limit-concurrency`: 503 past N connections or tasks",
        "granian": "`--backlog` 1024; `--backpressure`: N requests per worker, the rest wait (no 503)",
        "hypercorn": "`--backlog` 100; no cap",
        "lastro serve": "backlog 2048; `MAX_CONNECTIONS`; `MAX_IN_FLIGHT`: 503 + Retry-After past N",
    },
}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        ram = f"{kib / 1024**2:.1f} GiB"
    wrk = "not installed"  # the in-process parts run without it
    with contextlib.suppress(OSError):
        done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        wrk = next(iter((done.stdout or done.stderr).splitlines()), "?").strip()
    packages = ["lastro", "uvicorn", "gunicorn", "uvicorn-worker", "granian", "hypercorn", "fastapi"]
    packages += ["starlette", "uvloop", "httptools", "pysqlite3"]
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "ram": ram,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": wrk,
        "sqlite_stdlib": sqlite3.sqlite_version,
        "versions": {name: _version(name) for name in packages},
    }


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def _by_status(sample: dict[str, float] | None) -> str:
    if not sample:
        return "-"
    return f"{_ms(sample['p50_ms'])} / {_ms(sample['p99_ms'])} ({sample['count']:.0f})"


def _rps(row: dict[str, Any]) -> float:
    return float(row["rps"])


def _errors(row: dict[str, Any]) -> str:
    total = row["non_2xx"] + row["socket_errors"]
    return str(total) if total else "0"


def report(results: dict[str, Any]) -> str:
    lines = [f"Load average before / after: {results['load_before']} / {results['load_after']}", ""]
    servers = results["servers"]
    if servers:
        rounds = max(row.get("round", 1) for row in servers)
        lines += [
            f"### Servers (2 workers each; best of {rounds} round(s) by req/s, worst round in brackets; "
            "p50/p99 in ms from the best round; vs lastro = ratio of best req/s)",
            "",
        ]
        for app in dict.fromkeys(row["app"] for row in servers):
            rows = [row for row in servers if row["app"] == app]
            conns = sorted({row["connections"] for row in rows})
            names = list(dict.fromkeys(row["server"] for row in rows))

            def runs(name: str, c: int, rows: list[dict[str, Any]] = rows) -> list[dict[str, Any]]:
                return sorted((r for r in rows if r["server"] == name and r["connections"] == c), key=_rps)

            base = {c: _rps(runs("lastro serve", c)[-1]) for c in conns if runs("lastro serve", c)}
            header = ["server"]
            for c in conns:
                header += [f"c={c} req/s", "vs lastro", "p50", "p99", "errors"]
            table = []
            for name in names:
                cells: list[object] = [name]
                for c in conns:
                    ordered = runs(name, c)
                    best, worst = ordered[-1], ordered[0]
                    rps = _n(best["rps"]) + (f" ({_n(worst['rps'])})" if len(ordered) > 1 else "")
                    ratio = f"{best['rps'] / base[c]:.2f}" if base.get(c) else "-"
                    errors = str(sum(r["non_2xx"] + r["socket_errors"] for r in ordered))
                    cells += [rps, ratio, _ms(best["p50_ms"]), _ms(best["p99_ms"]), errors]
                table.append(cells)
            lines += [f"**{app}**", "", *_table(header, table), ""]
    lines += ["### Features", ""]
    names = [candidate.name for candidate in CANDIDATES]
    lines += [*_table(["behaviour", *names], [[b, *(FEATURES[b][n] for n in names)] for b in FEATURES]), ""]
    sweep = results["sweep"]
    if sweep:
        auto = resolve_workers("auto", "sqlite:///x.db")
        lines += [f"### SQLite worker sweep (lastro serve, 50 connections; `auto` here = {auto})", ""]
        workloads = list(dict.fromkeys(row["workload"] for row in sweep))
        header = ["workers"] + [f"{w} {col}" for w in workloads for col in ("req/s", "p50", "p99", "errors")]
        table = []
        for workers in sorted({row["workers"] for row in sweep}):
            cells = [str(workers)]
            for workload in workloads:
                row = next(r for r in sweep if r["workers"] == workers and r["workload"] == workload)
                cells += [_n(row["rps"]), _ms(row["p50_ms"]), _ms(row["p99_ms"]), _errors(row)]
            table.append(cells)
        lines += [*_table(header, table), ""]
    pressure = results["pressure"]
    if pressure:
        lines += [
            "### Back-pressure (lastro.create_app, 1 worker, 200 connections, ~2 ms CPU per request)",
            "",
            "200s/s and 503s count the responses of all 200 connections (wrk's 180 and the probe's "
            f"{PRESSURE_PROBE_CONNECTIONS}); wrk p50/p99 cover wrk's responses, both statuses mixed; "
            "the probe times 200s and 503s apart (n = its sample count).",
            "",
        ]
        header = ["endpoint", "cap", "200s/s", "503s", "wrk p50", "wrk p99", "wrk timeouts"]
        header += ["probe 200 p50 / p99 (n)", "probe 503 p50 / p99 (n)"]
        table = []
        for row in pressure:
            ok, refused = row["probe"].get("200"), row["probe"].get("503")
            ok_count = row["requests"] - row["non_2xx"] + (ok["count"] if ok else 0)
            refused_count = row["non_2xx"] + (refused["count"] if refused else 0)
            table.append(
                [
                    row["endpoint"],
                    row["cap"],
                    _n(ok_count / row["seconds"]),
                    _n(refused_count),
                    _ms(row["p50_ms"]),
                    _ms(row["p99_ms"]),
                    row["timeouts"],
                    _by_status(ok),
                    _by_status(refused),
                ]
            )
        lines += [*_table(header, table), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=7, help="seconds of each measured wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the server comparison")
    parser.add_argument("--smoke", action="store_true", help="one short run of each part (about 15 s)")
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    parser.add_argument("--report", type=Path, default=None, help="only print the report of a --json file")
    parser.add_argument(
        "--parts", default="servers,sweep,pressure", help="comma-separated parts to run (default: all three)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.report:
        sys.stdout.write(report(json.loads(args.report.read_text())) + "\n")
        return 0

    seconds = 1 if args.smoke else args.duration
    warmup = 0.0 if args.smoke else 1.0
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "duration": seconds, "load_before": load_average()}
    with tempfile.TemporaryDirectory(prefix="lastro-bench-") as tmp:
        workdir = Path(tmp)
        rounds = 1 if args.smoke else args.rounds
        parts = set(args.parts.split(","))
        results["servers"] = []
        results["sweep"] = []
        results["pressure"] = []
        if "servers" in parts:
            results["servers"] = compare_servers(workdir, seconds, warmup, rounds, args.smoke)
        if "sweep" in parts:
            results["sweep"] = sweep_workers(workdir, seconds, warmup, args.smoke)
        if "pressure" in parts:
            results["pressure"] = back_pressure(workdir, seconds, warmup, args.smoke)
    results["load_after"] = load_average()
    results["wall_seconds"] = round(time.monotonic() - started, 1)

    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(report(results) + "\n")
    logger.info("done in %.0f s", results["wall_seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
