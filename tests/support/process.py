"""One way to run a real server for a test or a benchmark: start, wait until ready, read its log, stop.

A server command runs in a process group of its own, its output in a log file; it is ready once its ready
path answers 200 over HTTP (a `lastro serve` started on port 0 names its port in its banner first). Stopping
sends SIGTERM to the server, then SIGKILL to its whole group, so that no worker outlives it. On Windows the
graceful stop is CTRL_BREAK (what uvicorn's supervisor stops on there) and the tree goes with `taskkill /T`.
The tests (`tests/support/servers.py`) and the benchmarks (`benchmarks/harness.py`) both start their
servers here. This module is tooling, not product: it imports only the standard library, and lastro never
imports it.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, Self

__all__ = ["ROOT", "ServerFailed", "ServerProcess", "free_port", "stop_all", "wait_for"]

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
WINDOWS = sys.platform == "win32"

logger = logging.getLogger(__name__)


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class ServerFailed(RuntimeError):
    """The server exited, or did not answer its ready path in time; the message ends with its log."""


class ServerProcess:
    """A server process from `start()` to `stop()`; as a context manager, started and ready in the block.

    The class attributes are the defaults of the tests; the benchmarks, on a machine under load, wait
    longer and poll faster (start-up time is one of their figures).
    """

    ready_timeout = 20.0  # seconds for each step: the banner (port 0 only), then the ready path
    poll_interval = 0.05
    stop_timeout = 30.0  # seconds between SIGTERM and SIGKILL

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        *,
        port: int = 0,
        ready_path: str = "/health/ready",
        cwd: Path = ROOT,
    ) -> None:
        self.argv, self.env, self.log_path, self.cwd = list(argv), dict(env), log_path, cwd
        self.port, self.ready_path = port, ready_path
        self.host = HOST  # where it answers (a node of tests/support/cluster.py: its namespace's address)
        self.started = self.started_wall = self.ready_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._terminated = False

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError(f"{self.argv[0]} was not started")
        return self._process

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self.started, self.started_wall = time.monotonic(), time.time()
        self._terminated = False
        with self.log_path.open("wb") as log:
            # A session of its own: signals go to the server only, and its workers can be found by group.
            group: dict[str, Any] = {"start_new_session": True}
            if WINDOWS:
                group = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
            self._process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd, **group
            )
        return self

    def wait_ready(self, timeout: float | None = None) -> float:
        """Wait for the banner's port (if started on port 0), then for a 200 of the ready path; return the
        seconds from start to that 200."""
        timeout = self.ready_timeout if timeout is None else timeout
        if not self.port:
            banner = self._poll(lambda: self.events("lastro serving"), timeout, "logged no banner")
            self.port = banner[0]["port"]
        self._poll(self._answers, timeout, f"did not answer {self.ready_path}")
        self.ready_seconds = time.monotonic() - self.started
        return self.ready_seconds

    def _poll(self, condition: Callable[[], Any], timeout: float, failure: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise ServerFailed(f"{self.argv[0]} exited with {code}:\n{self.log_tail()}")
            result = condition()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise ServerFailed(f"{self.argv[0]} {failure} within {timeout:g} s:\n{self.log_tail()}")
            time.sleep(self.poll_interval)

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=2)
        try:
            connection.request("GET", self.ready_path)
            return connection.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def logs(self) -> list[dict[str, Any]]:
        """Every line of the log, parsed as JSON where it is (lastro's JSON logs), else as its text."""
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                lines.append({"event": raw, "unparsed": True})
        return lines

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.logs() if event in str(line.get("event", ""))]

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def worker_pids(self) -> set[int]:
        """Workers that logged uvicorn's start-up line and not yet its exit line."""
        started = {line["pid"] for line in self.events("Application startup complete")}
        finished = {line["pid"] for line in self.events("Finished server process")}
        return started - finished

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def terminate(self) -> None:
        """Ask the server to stop (SIGTERM), once: a stopping supervisor is not asked again."""
        if not self._terminated and self.process.poll() is None:
            self._terminated = True
            self.process.send_signal(signal.CTRL_BREAK_EVENT if WINDOWS else signal.SIGTERM)

    def stop(self, timeout: float | None = None) -> int:
        """SIGTERM, and SIGKILL to the group after `timeout` s; then whatever is left of the group goes
        too (a worker its manager lost). Returns the server's exit code."""
        process = self.process
        timeout = self.stop_timeout if timeout is None else timeout
        if process.poll() is None:
            self.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s ignored its stop signal for %g s; killing it", self.argv[0], timeout)
        if WINDOWS:
            tree = ["taskkill", "/F", "/T", "/PID", str(process.pid)]
            subprocess.run(tree, capture_output=True, check=False)
        else:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        return process.wait()

    def __enter__(self) -> Self:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_all(servers: Sequence[ServerProcess], timeout: float | None = None) -> list[int]:
    """Stop several servers with their shutdowns overlapping: SIGTERM to every one, then each waited for.
    Every one is stopped even when stopping another failed; the first failure is raised afterwards."""
    for server in servers:
        with suppress(RuntimeError):  # never started
            server.terminate()
    codes: list[int] = []
    failure: Exception | None = None
    for server in servers:
        try:
            codes.append(server.stop(timeout))
        except RuntimeError:  # never started
            continue
        except Exception as error:
            failure = failure or error
    if failure is not None:
        raise failure
    return codes
