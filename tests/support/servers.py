"""Real servers on loopback for tests: `lastro serve` subprocesses, uvicorn in a thread, a TCP proxy."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[2]
LASTRO = str(Path(sys.executable).with_name("lastro"))
ORDERS = "examples.orders.app:create_app"
ORDERS_MIGRATIONS = ROOT / "examples" / "orders" / "migrations"


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


class ServeProcess:
    """`lastro serve` as a subprocess, its JSON log lines read from a file."""

    def __init__(self, log_path: Path, args: list[str], env: dict[str, str]) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [LASTRO, "serve", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                lines.append({"event": raw, "unparsed": True})
        return lines

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.logs() if event in str(line.get("event", ""))]

    def wait_ready(self, timeout: float = 20.0) -> None:
        banner = wait_for(lambda: self.events("lastro serving") or self.process.poll() is not None, timeout)
        assert self.process.poll() is None, self.log_path.read_text()
        self.port = banner[0]["port"]
        wait_for(self._ready, timeout)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def worker_pids(self) -> set[int]:
        started = {line["pid"] for line in self.events("Application startup complete")}
        finished = {line["pid"] for line in self.events("Finished server process")}
        return started - finished

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Workers live in the same session: make sure none outlives the test.
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()
        return self.process.returncode


def serve_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LASTRO_", "PYTEST_"))}
    env.update(
        {
            "ENVIRONMENT": "development",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "BIND": "127.0.0.1:0",
            "WORKERS": "2",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'service.db'}",
            "GRACEFUL_TIMEOUT": "10",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(settings)
    return env


@contextmanager
def serve(tmp_path: Path, *args: str, **settings: str) -> Iterator[ServeProcess]:
    """Run `lastro serve` (the orders app, migrated first, unless `args` say otherwise) for the block."""
    if not args:
        settings.setdefault("MIGRATIONS_DIR", str(ORDERS_MIGRATIONS))
    env = serve_env(tmp_path, **settings)
    if not args:
        migrate(env)
    server = ServeProcess(tmp_path / "serve.log", list(args) or [ORDERS, "--factory"], env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def migrate(env: dict[str, str]) -> None:
    """`lastro db upgrade` of the orders service against the database `env` names."""
    subprocess.run(
        [LASTRO, "db", "upgrade", "--migrations", str(ORDERS_MIGRATIONS)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


@contextmanager
def uvicorn_thread(app: Any) -> Iterator[str]:
    """Serve an ASGI app with a real uvicorn on a free loopback port, in a thread; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started and server.servers, timeout=10)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TcpProxy:
    """A loopback TCP relay to a real server; `stop()` makes the upstream vanish, `start()` brings it back."""

    def __init__(self, upstream: tuple[str, int], port: int | None = None) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._relay(client, upstream)

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        """Carry bytes both ways between a new client and its upstream connection."""
        with self._lock:
            self._sockets += [client, upstream]
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _stop_listening(self) -> None:
        if self._listener is not None:
            with suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            self._listener.close()
            self._listener = None

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stop_listening()
        with self._lock:
            for sock in self._sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()
