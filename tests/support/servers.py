"""Real servers on loopback for tests: `lastro serve` subprocesses, uvicorn in a thread, a TCP proxy.

Starting, waiting for and stopping a server process is `tests/support/process.py`, which the benchmarks
share; this module adds what only the tests need: the orders service's environment and migrations.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
import uvicorn
from psycopg.conninfo import conninfo_to_dict

from tests.conftest import POSTGRES_URL
from tests.support.databases import create_database, database_name, drop_database
from tests.support.process import ROOT, ServerProcess, free_port, wait_for

__all__ = [
    "LASTRO",
    "ORDERS",
    "ORDERS_MIGRATIONS",
    "ROOT",
    "WORKER_START_ENV",
    "ServeProcess",
    "TcpProxy",
    "free_port",
    "migrate",
    "serve",
    "serve_env",
    "uvicorn_thread",
    "wait_for",
]

LASTRO = str(Path(sys.executable).with_name("lastro"))
ORDERS = "examples.orders.app:create_app"
ORDERS_MIGRATIONS = ROOT / "examples" / "orders" / "migrations"


class ServeProcess(ServerProcess):
    """`lastro serve` with `args`, started at once on the port BIND names (0: the banner tells)."""

    def __init__(self, log_path: Path, args: list[str], env: dict[str, str]) -> None:
        super().__init__([LASTRO, "serve", *args], env, log_path)
        if env.get("WORKER_START_METHOD") == "spawn":
            # A spawned worker imports everything afresh: on a loaded 2-core machine 20 s was seen short.
            self.ready_timeout = 60.0
        self.start()


# `LASTRO_TEST_WORKER_START_METHOD=spawn pytest tests/serve` runs every `lastro serve` of the tests with
# spawned workers, as on Windows (tests/serve/test_spawned_workers.py runs a chosen set that way always).
WORKER_START_ENV = "LASTRO_TEST_WORKER_START_METHOD"


def serve_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    start_method = os.environ.get(WORKER_START_ENV)
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
            # Limits stay on, so every request goes through them, but high enough that a test's own load
            # is never refused; tests of the limits set their own.
            "RATE_LIMIT_DEFAULT": "1000000/minute",
            "RATE_LIMIT_LOGIN": "1000000/minute",
            # Temporary files and the workers' shared files (rate-limit table, metrics) stay the test's own.
            "TMPDIR": str(tmp_path),
            "SHARED_MEMORY_DIR": str(tmp_path),
            "PYTHONPATH": str(ROOT),
        }
    )
    if start_method:
        env["WORKER_START_METHOD"] = start_method
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
    """`lastro db upgrade` of the orders service against the database `env` names. A SQLite file that does
    not exist yet is a copy of the one the command migrated first in this process, and a PostgreSQL
    database without a table is made again from the one it migrated first (CREATE DATABASE ... TEMPLATE):
    the same schema, without the second or so that each run of the command takes."""
    target = _new_sqlite_file(env)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_migrated_sqlite_file(env), target)
    elif (url := _empty_postgres_database(env)) is not None:
        _copy_migrated_postgres_database(url, env)
    else:
        _upgrade(env)


def _upgrade(env: dict[str, str]) -> None:
    subprocess.run(
        [LASTRO, "db", "upgrade", "--migrations", str(ORDERS_MIGRATIONS)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def _new_sqlite_file(env: dict[str, str]) -> Path | None:
    """The SQLite file `env` names, if it does not exist yet and no pragma of the test's own shapes it."""
    url = env.get("DATABASE_URL", "")
    if not url.startswith("sqlite:///") or "?" in url or "SQLITE_PRAGMAS" in env:
        return None
    path = Path(url.removeprefix("sqlite:///"))
    return path if path.is_absolute() and not path.exists() else None


_MIGRATED: list[Path] = []


def _migrated_sqlite_file(env: dict[str, str]) -> Path:
    """A SQLite file `lastro db upgrade` migrated to the head, made once, gone when the process ends."""
    if not _MIGRATED:
        directory = Path(tempfile.mkdtemp(prefix="lastro-migrated-"))
        atexit.register(shutil.rmtree, directory, True)
        path = directory / "orders.db"
        _upgrade({**env, "DATABASE_URL": f"sqlite:///{path}"})
        _MIGRATED.append(path)
    return _MIGRATED[0]


def _empty_postgres_database(env: dict[str, str]) -> str | None:
    """The URL `env` names, if it is a database of the tests' PostgreSQL server (not through a proxy of a
    test's own) that has no table yet."""
    url = env.get("DATABASE_URL", "")
    if not url.startswith(("postgresql+psycopg://", "postgresql://", "postgres://")) or "?" in url:
        return None
    params, server = conninfo_to_dict(_conninfo(url)), conninfo_to_dict(POSTGRES_URL)
    if (params.get("host"), params.get("port", "5432")) != (server.get("host"), server.get("port", "5432")):
        return None
    if params.get("dbname") == server.get("dbname"):
        return None  # the database the tests connect to, not one of a test's own
    with psycopg.connect(_conninfo(url), autocommit=True) as connection:
        found = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()
    return url if found == (0,) else None


def _conninfo(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


_MIGRATED_POSTGRES: list[str] = []


def _copy_migrated_postgres_database(url: str, env: dict[str, str]) -> None:
    if not _MIGRATED_POSTGRES:
        template = database_name("lastro_migrated")
        create_database(template)
        atexit.register(drop_database, template)
        _upgrade({**env, "DATABASE_URL": f"{url.rsplit('/', 1)[0]}/{template}"})
        _MIGRATED_POSTGRES.append(template)
    name = str(conninfo_to_dict(_conninfo(url))["dbname"])
    drop_database(name)
    create_database(name, template=_MIGRATED_POSTGRES[0])


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


@contextmanager
def protocol_server(app: Any, protocol: type[asyncio.Protocol] | None, **config: object) -> Iterator[int]:
    """uvicorn with the HTTP `protocol` in a thread on a free port, serving `app`; yield the port. `config`
    sets uvicorn.Config's arguments, and `header_timeout` the attribute lastro's protocols read."""
    assert protocol is not None
    options = {key: value for key, value in config.items() if key != "header_timeout"}
    settings = uvicorn.Config(app, host="127.0.0.1", port=0, http=protocol, log_config=None, **options)  # type: ignore[arg-type]
    settings.header_timeout = config.get("header_timeout", 20.0)  # type: ignore[attr-defined]
    server = uvicorn.Server(settings)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started and server.servers, timeout=10)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


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
