"""Keep-alive writers through rolling restarts: how many requests fail while workers stop.

    .venv/bin/python -m benchmarks.restarts --seconds 60 --sighups 6          # rolling restarts
    .venv/bin/python -m benchmarks.restarts --seconds 60 --max-requests 500   # recycling, no signal

The orders service (`examples/orders`) on SQLite under `lastro serve`, 2 workers, `LOG_LEVEL=info` with JSON
access lines to a file. `--writers` threads each keep one httpx client (one keep-alive connection, reused
until the server closes it) and POST /api/orders back to back. Meanwhile the supervisor gets SIGHUP every
`seconds / (sighups + 1)` s, or the workers recycle after `--max-requests`. Every request is counted by its
status, and every failure by its exception: a reset shows as `ReadError(... reset by peer)` or
`RemoteProtocolError(Server disconnected ...)`. The report is markdown on stdout.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.process import ROOT, ServerProcess

__all__ = ["Run", "main", "measure"]

LASTRO = str(Path(sys.executable).with_name("lastro"))
ORDER = b'{"customer":"restart","items":[{"sku":"SKU-1","name":"Widget","quantity":2,"unit_price":19.9}]}'


@dataclass
class Run:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    workers_stopped: int = 0

    def report(self) -> str:
        failed = sum(self.errors.values())
        total = sum(self.statuses.values()) + failed
        by_status = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        lines = [
            "| requests | by status | failed | workers stopped | seconds |",
            "|---|---|---|---|---|",
            f"| {total} | {by_status} | {failed} | {self.workers_stopped} | {self.seconds} |",
        ]
        lines += [f"- {count} x `{error}`" for error, count in self.errors.most_common()]
        return "\n".join(lines)


def environment(directory: Path, max_requests: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LASTRO_", "PYTEST_"))}
    env.update(
        ENVIRONMENT="development",
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        BIND="127.0.0.1:0",
        WORKERS="2",
        DATABASE_URL=f"sqlite:///{directory / 'orders.db'}",
        MIGRATIONS_DIR=str(ROOT / "examples" / "orders" / "migrations"),
        SECRET_KEY="k" * 48,
        MAX_REQUESTS=str(max_requests),
        MAX_REQUESTS_JITTER=str(max_requests // 10),
        PYTHONPATH=str(ROOT),
        # Limits on, as deployed, and high enough that one load generator's address is never refused.
        RATE_LIMIT_DEFAULT="1000000/minute",
        RATE_LIMIT_LOGIN="1000000/minute",
    )
    return env


def measure(seconds: float, writers: int, sighups: int, max_requests: int) -> Run:
    with tempfile.TemporaryDirectory(prefix="lastro-restarts-") as name:
        directory = Path(name)
        env = environment(directory, max_requests)
        command = [LASTRO, "db", "upgrade", "--migrations", env["MIGRATIONS_DIR"]]
        subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True)
        argv = [LASTRO, "serve", "examples.orders.app:create_app", "--factory"]
        server = ServerProcess(argv, env, directory / "serve.log")
        server.ready_timeout, server.stop_timeout = 30.0, 60.0
        with server:
            run = drive(server, seconds, writers, sighups)
        run.workers_stopped = len(server.events("Finished server process"))
        return run


def drive(server: ServerProcess, seconds: float, writers: int, sighups: int) -> Run:
    url = server.url
    login = {"username": "admin", "password": "admin"}
    token = httpx.post(f"{url}/api/auth/token", data=login, timeout=20).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    run = Run()
    lock = threading.Lock()
    done = threading.Event()

    def writer() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            while not done.is_set():
                try:
                    status = client.post("/api/orders", content=ORDER).status_code
                except httpx.HTTPError as exc:
                    with lock:
                        run.errors[f"{type(exc).__name__}: {exc}"] += 1
                else:
                    with lock:
                        run.statuses[status] += 1

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for thread in threads:
        thread.start()
    begun = time.monotonic()
    for index in range(1, sighups + 1):
        time.sleep(max(0.0, begun + index * seconds / (sighups + 1) - time.monotonic()))
        server.signal(signal.SIGHUP)
    time.sleep(max(0.0, begun + seconds - time.monotonic()))
    done.set()
    for thread in threads:
        thread.join(60)
    run.seconds = round(time.monotonic() - begun, 1)
    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--sighups", type=int, default=6)
    parser.add_argument("--max-requests", type=int, default=0, help="recycle workers; 0 = never")
    options = parser.parse_args(argv)
    run = measure(options.seconds, options.writers, options.sighups, options.max_requests)
    sys.stdout.write(run.report() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
