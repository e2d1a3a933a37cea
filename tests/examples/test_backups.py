"""A backup of the orders service taken while it writes restores into a database that serves again and
holds every order acknowledged before the backup began (SQLite: the online snapshot; PostgreSQL: pg_dump)."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.examples.conftest import BURST_BACKENDS, JSON_ORDER, SECRET_KEY, fresh_database, serve_orders
from tests.support.databases import database_name, drop_database, postgres_url_for
from tests.support.servers import LASTRO, ROOT, ServeProcess, wait_for

WRITERS = 4


class Writers:
    """Threads that create orders until stopped, each acknowledged id kept with the moment of its 201."""

    def __init__(self, base_url: str) -> None:
        response = httpx.post(
            f"{base_url}/api/auth/token", data={"username": "admin", "password": "admin"}, timeout=20
        )
        assert response.status_code == 200, response.text
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        self.base_url = base_url
        self.acks: list[tuple[float, int]] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._write, daemon=True) for _ in range(WRITERS)]

    def _write(self) -> None:
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=20) as client:
            while not self.stop.is_set():
                response = client.post("/api/orders", json=JSON_ORDER)
                if response.status_code == 201:
                    self.acks.append((time.monotonic(), response.json()["id"]))
                elif response.status_code != 503:  # shed under a loaded machine: not acknowledged, fine
                    self.failures.append(f"{response.status_code} {response.text[:200]}")

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def lastro(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LASTRO, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@contextmanager
def restore_target(backend: str, directory: Path) -> Iterator[str]:
    """A DATABASE_URL that does not exist yet, for `lastro restore` to create."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'restored' / 'orders.db'}"
        return
    name = database_name("lastro_e2e")
    try:
        yield postgres_url_for(name)
    finally:
        drop_database(name)


def order_ids(backend: str, url: str) -> set[int]:
    if backend == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            return {row[0] for row in connection.execute("SELECT id FROM orders")}
    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        return {row[0] for row in connection.execute("SELECT id FROM orders")}


@pytest.mark.parametrize("backend", BURST_BACKENDS)
def test_a_backup_taken_during_a_write_burst_restores_every_acknowledged_order(
    backend: str, tmp_path: Path
) -> None:
    """Four writers keep creating orders on three workers while `lastro backup` runs; the restored database
    passes integrity_check, boots the service to ready, and holds every order acknowledged before."""
    settings = {"SECRET_KEY": SECRET_KEY, "WORKERS": "3"}
    if backend == "postgres":
        settings |= {"DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "1"}
    with (
        fresh_database(backend, tmp_path) as url,
        serve_orders(tmp_path, DATABASE_URL=url, **settings) as server,
    ):
        env = server.env
        with Writers(server.url) as writers:
            wait_for(lambda: len(writers.acks) >= 150, timeout=60)
            began = time.monotonic()
            made = lastro("backup", "--output", str(tmp_path / "backups"), env=env)
            ended = time.monotonic()
            acked = len(writers.acks)
            wait_for(lambda: len(writers.acks) >= acked + 50, timeout=60)
        assert made.returncode == 0, made.stderr
        assert not writers.failures, writers.failures[:3]
    during = [order for at, order in writers.acks if began <= at <= ended]
    assert during, "no order was acknowledged while the backup ran: it was not taken under load"
    before = {order for at, order in writers.acks if at < began}
    (backup,) = (tmp_path / "backups").iterdir()

    with restore_target(backend, tmp_path) as target:
        restored = lastro("restore", str(backup), env={**env, "DATABASE_URL": target})
        assert restored.returncode == 0, restored.stderr
        if backend == "sqlite":
            with sqlite3.connect(target.removeprefix("sqlite:///")) as connection:
                assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        again = tmp_path / "again"
        again.mkdir()
        # One worker shows the restored database serves; the three were for the writes under the backup.
        with serve_orders(again, DATABASE_URL=target, **settings | {"WORKERS": "1"}) as served:
            assert httpx.get(f"{served.url}/health/ready", timeout=10).status_code == 200
        assert before <= order_ids(backend, target)


def test_restore_refuses_a_served_database_even_with_force(tmp_path: Path) -> None:
    """While `lastro serve` runs, `lastro restore --force` onto its SQLite database exits 1 with one line
    saying it is being served; once the service is stopped the same command restores. (PostgreSQL's
    refusal, another session connected, is tests/backup/test_postgres.py's.)"""
    server: ServeProcess
    with serve_orders(
        tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'orders.db'}", SECRET_KEY=SECRET_KEY
    ) as server:
        env = server.env
        assert lastro("backup", "--output", str(tmp_path / "backups"), env=env).returncode == 0
        (backup,) = (tmp_path / "backups").iterdir()
        refused = lastro("restore", str(backup), "--force", env=env)
        assert refused.returncode == 1
        (line,) = refused.stderr.splitlines()
        assert line.startswith("Error: ")
        assert "being served" in line
        assert "--force does not override" in line
        assert httpx.get(f"{server.url}/health/ready", timeout=10).status_code == 200
    done = lastro("restore", str(backup), "--force", env=env)
    assert done.returncode == 0, done.stderr
    previous = done.stdout.split("previous kept as ")[1].split(")")[0]
    assert Path(previous).is_file()
