"""What each part of lastro's request stack costs a request, in process: no server, no network, no client.

    .venv/bin/python -m benchmarks.stack                      # 7 rounds of 2,000 requests per variant
    .venv/bin/python -m benchmarks.stack --rounds 3 --requests 200    # a quick look

One FastAPI "hello" route, bare and inside `lastro.create_app` (lifespan started, every feature on), and
the same with one part turned off per variant. Each request is one call of the ASGI app with a fresh scope;
the figure is the process CPU time per request, median over the rounds, the variants taking turns within
each round. The stack's cost is a variant's figure less the bare app's; what a part costs is what turning it
off saves. In-process figures leave out the server and the kernel, so they are smaller than a worker's CPU
per request under `make bench`, and they move by tens of microseconds from one run to the next on a shared
machine: compare variants within a run.

The access lines are written to standard output, which this script sends to /dev/null; the report goes to
standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI

ASGIApp = Callable[..., Any]

# Each variant: the settings it changes from "every feature on", or None for the bare FastAPI app.
VARIANTS: dict[str, dict[str, Any] | None] = {
    "FastAPI alone": None,
    "lastro, every feature on": {},
    "rate limit off": {"RATE_LIMIT_DEFAULT": "off"},
    "metrics off": {"METRICS_ENABLED": False},
    "access line off (LOG_LEVEL=warning)": {"LOG_LEVEL": "warning"},
    "request timeout off": {"REQUEST_TIMEOUT": 0},
    "in-flight cap and loop-lag shedding off": {"MAX_IN_FLIGHT": 0, "MAX_LOOP_LAG": 0},
    "body limit off": {"MAX_BODY_BYTES": 0},
}
ON = {
    "ENVIRONMENT": "development",
    "LOG_FORMAT": "json",
    "RATE_LIMIT_DEFAULT": "1000000000/minute",  # checked on every request, never reached
    "TIMEOUT": 3600,  # the loop watchdog: these rounds never give the loop a turn
}
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 1234),
    "server": ("127.0.0.1", 8000),
}


async def _hello() -> dict[str, str]:
    return {"message": "hello"}


def _app(variant: dict[str, Any] | None, directory: Path, index: int) -> FastAPI:
    if variant is None:
        app = FastAPI()
    else:
        import lastro

        app = lastro.create_app(
            lastro.Settings(
                **{**ON, **variant},
                DATABASE_URL=f"sqlite:///{directory / f'stack-{index}.db'}",
                SERVICE_NAME=f"stack-{index}",  # its own rate-limit table in /dev/shm, as a service's
            )
        )
    app.get("/")(_hello)
    return app


async def _start(app: ASGIApp) -> dict[str, Any]:
    """The app's lifespan, started and left running; the state it gives each request."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    state: dict[str, Any] = {}
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    asyncio.get_running_loop().create_task(app(scope, inbox.get, outbox.put))
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"lifespan failed: {started}")
    return state


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    if message["type"] == "http.response.start" and message["status"] != 200:
        raise RuntimeError(f"the hello route answered {message['status']}")


async def _round(app: ASGIApp, state: dict[str, Any], requests: int) -> float:
    """CPU microseconds per request over `requests` calls."""
    started = time.process_time()
    for _ in range(requests):
        await app({**SCOPE, "state": dict(state)}, _receive, _send)
    return (time.process_time() - started) / requests * 1e6


async def measure(rounds: int, requests: int, directory: Path) -> dict[str, float]:
    apps: dict[str, tuple[ASGIApp, dict[str, Any]]] = {}
    for index, (name, variant) in enumerate(VARIANTS.items()):
        built = _app(variant, directory, index)
        apps[name] = (built, await _start(built) if variant is not None else {})
    for runner, state in apps.values():  # warm-up: caches, the first-request path
        await _round(runner, state, min(requests, 500))
    figures: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(rounds):
        for name, (runner, state) in apps.items():
            figures[name].append(await _round(runner, state, requests))
    return {name: statistics.median(values) for name, values in figures.items()}


def report(medians: dict[str, float], rounds: int, requests: int) -> str:
    bare = medians["FastAPI alone"]
    on = medians["lastro, every feature on"]
    lines = [
        f"{rounds} rounds of {requests:,} requests per variant, CPU µs per request (median); "
        f"Python {sys.version.split()[0]}",
        "",
        "| variant | µs/request | lastro's stack, µs | saved against every feature on, µs |",
        "|---|---|---|---|",
    ]
    for name, value in medians.items():
        stack = "-" if name == "FastAPI alone" else f"{value - bare:.0f}"
        saved = "-" if name in ("FastAPI alone", "lastro, every feature on") else f"{on - value:.0f}"
        lines.append(f"| {name} | {value:.0f} | {stack} | {saved} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=2000, help="requests per variant per round")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.requests < 1:
        parser.error("--rounds and --requests must be at least 1")
    out = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)  # the access lines
    with tempfile.TemporaryDirectory(prefix="lastro-stack-") as tmp:
        medians = asyncio.run(measure(args.rounds, args.requests, Path(tmp)))
    os.dup2(out, 1)
    sys.stderr.write(report(medians, args.rounds, args.requests) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
