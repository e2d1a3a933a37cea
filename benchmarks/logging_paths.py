"""Lines per second of each way a log line can be written, to a file, in the JSON format.

    .venv/bin/python -m benchmarks.logging_paths             # 7 rounds of 20,000 lines per cell: ~1 minute
    .venv/bin/python -m benchmarks.logging_paths --smoke     # 1 round of 2,000 lines

Three setups:

- `baseline`: lastro at `--baseline` (a git revision; by default the last one whose access line decided
  per line whether to write around logging), extracted with `git archive` into a temporary directory.
- `structlog`: structlog's documented fast configuration (`make_filtering_bound_logger`, cached
  loggers, `BytesLoggerFactory`, `JSONRenderer(serializer=orjson.dumps)`), with the same fields.
- `tree`: the working tree.

Three calls: the access line (what `AccessLogMiddleware` writes, 3 keyword fields); any other structlog
call with 3 keyword fields; a stdlib `logging.getLogger(...).info(...)` call with %-arguments. structlog's
fast configuration only changes structlog calls, so it has no stdlib cell.

Each (setup, call) cell runs in a process of its own, which writes a warm-up tenth of the lines, then
times the lines; the rounds take turns across cells so that a change in the load of the shared machine hits
all alike. The report, markdown on stdout, gives the median of the rounds (and their range).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["main", "measure", "report"]

logger = logging.getLogger("benchmarks.logging_paths")

BASELINE = "cccb98236150a78bcbf1205883c27db91f175181"
SETUPS = ("baseline", "structlog", "tree")
CALLS = ("access", "structlog", "stdlib")
CELLS = [(setup, call) for setup in SETUPS for call in CALLS if (setup, call) != ("structlog", "stdlib")]
FIELDS = {"method": "GET", "path": "/orders/7", "status": 200}
CALL_NAMES = {
    "access": "access line, 3 fields",
    "structlog": "structlog call, 3 fields",
    "stdlib": "stdlib `logging` call",
}


def _structlog_fast_path(log: io.TextIOWrapper) -> Callable[[], None]:
    import orjson
    import structlog

    def add_pid(_: object, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict["pid"] = os.getpid()
        return event_dict

    structlog.configure(
        cache_logger_on_first_use=True,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.format_exc_info,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_pid,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        logger_factory=structlog.BytesLoggerFactory(log.buffer),
    )
    bound = structlog.get_logger("lastro.access").bind()
    return lambda: bound.info("request", **FIELDS)


def _lastro_call(setup: str, call: str) -> Callable[[], None]:
    from lastro.observability import logging as lastro_logging

    lastro_logging.configure_logging("INFO", "json")
    if call == "stdlib":
        stdlib = logging.getLogger("bench.stdlib")
        return lambda: stdlib.info("served %s in %d ms", "/orders/7", 3)
    if call == "structlog":
        bound = lastro_logging.get_logger("bench.structlog")
        return lambda: bound.info("request", **FIELDS)
    if setup == "baseline":
        # As the baseline's AccessLogMiddleware wrote it: directly when nothing else listens, else logged.
        from lastro.observability.json_lines import JSON_LINES  # type: ignore[attr-defined]

        access = logging.getLogger("lastro.access")
        fallback = lastro_logging.get_logger("lastro.access")

        def write() -> None:
            if not JSON_LINES.write(access, "request", dict(FIELDS)):
                fallback.info("request", **FIELDS)

        return write
    line = lastro_logging.get_line_logger(lastro_logging.ACCESS_LOGGER)
    return lambda: line.info("request", **FIELDS)


def worker(setup: str, call: str, tree: str, lines: int, log_path: str) -> None:
    """Time `lines` calls in this process, logging to `log_path`; one JSON result on stdout."""
    result = sys.stdout
    sys.path.insert(0, tree)  # before anything imports lastro: the baseline's copy wins
    log = open(log_path, "w", encoding="ascii")  # noqa: SIM115 - open until the process ends
    sys.stdout = log  # what logging_config's ext://sys.stdout resolves to
    emit = _structlog_fast_path(log) if setup == "structlog" else _lastro_call(setup, call)
    for _ in range(max(lines // 10, 1)):
        emit()
    started = time.perf_counter()
    for _ in range(lines):
        emit()
    seconds = time.perf_counter() - started
    log.flush()
    import lastro

    result.write(json.dumps({"lines_per_s": lines / seconds, "lastro": str(Path(lastro.__file__).parent)}))


def _extract(revision: str, directory: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "lastro"], capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def measure(
    baseline: str, rounds: int, lines: int, directory: Path, calls: Sequence[str] = CALLS
) -> dict[tuple[str, str], list[float]]:
    trees = {
        "baseline": _extract(baseline, directory / "baseline"),
        "structlog": Path.cwd(),
        "tree": Path.cwd(),
    }
    chosen = [cell for cell in CELLS if cell[1] in calls]
    cells: dict[tuple[str, str], list[float]] = {cell: [] for cell in chosen}
    for number in range(rounds):
        order = chosen[number % len(chosen) :] + chosen[: number % len(chosen)]
        for setup, call in order:
            log_path = directory / f"{setup}-{call}.log"
            argv = [sys.executable, "-m", "benchmarks.logging_paths", "--worker", setup, call]
            argv += ["--tree", str(trees[setup]), "--lines", str(lines), "--log", str(log_path)]
            done = subprocess.run(argv, capture_output=True, text=True, check=True)
            found = json.loads(done.stdout)
            expected = trees[setup] / "lastro"
            if Path(found["lastro"]) != expected:
                raise RuntimeError(f"{setup} imported {found['lastro']}, not {expected}")
            cells[(setup, call)].append(found["lines_per_s"])
            log_path.unlink()
        logger.info("round %d of %d done", number + 1, rounds)
    return cells


def _cell(samples: list[float]) -> str:
    median = statistics.median(samples)
    return f"{median:,.0f} ({1e6 / median:.1f} µs; {min(samples):,.0f}-{max(samples):,.0f})"


def report(cells: dict[tuple[str, str], list[float]], info: dict[str, Any]) -> str:
    lines = [
        f"Lines per second to a file, median of {info['rounds']} rounds of {info['lines']:,} lines "
        "(µs a line; range of the rounds).",
        "",
        "| call | baseline | structlog fast path | tree | tree / baseline | tree / structlog |",
        "|---|---|---|---|---|---|",
    ]
    for call in dict.fromkeys(call for _, call in cells):
        row = [CALL_NAMES[call]]
        medians = {
            setup: statistics.median(cells[(setup, call)]) for setup in SETUPS if (setup, call) in cells
        }
        row += [_cell(cells[(setup, call)]) if (setup, call) in cells else "—" for setup in SETUPS]
        row.append(f"{medians['tree'] / medians['baseline']:.2f}x")
        row.append(f"{medians['tree'] / medians['structlog']:.2f}x" if "structlog" in medians else "—")
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        f"{info['date']}, baseline {info['baseline'][:10]}, tree at {info['head'][:10]}; "
        f"Python {info['python']}, structlog {info['structlog']}, orjson {info['orjson']}; "
        f"{info['cores']} cores, load average {info['load_before']} before and {info['load_after']} after.",
    ]
    return "\n".join(lines)


def _load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="1 round of 2,000 lines")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--lines", type=int, default=20_000, help="timed lines per cell and round")
    parser.add_argument("--calls", nargs="+", choices=CALLS, default=list(CALLS), help="the calls to time")
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the baseline")
    parser.add_argument("--dir", type=Path, default=None, help="where the log files go")
    parser.add_argument("--worker", nargs=2, metavar=("SETUP", "CALL"), help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker, tree=args.tree, lines=args.lines, log_path=args.log)
        return 0
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    if args.smoke:
        args.rounds, args.lines = 1, 2_000
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    info: dict[str, Any] = vars(args) | {
        "date": date.today().isoformat(),
        "head": head,
        "python": sys.version.split()[0],
        "structlog": metadata.version("structlog"),
        "orjson": metadata.version("orjson"),
        "cores": os.cpu_count(),
        "load_before": _load_average(),
    }
    with tempfile.TemporaryDirectory(prefix="lastro-logging-", dir=args.dir) as directory:
        cells = measure(args.baseline, args.rounds, args.lines, Path(directory), args.calls)
    info["load_after"] = _load_average()
    sys.stdout.write(report(cells, info) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
