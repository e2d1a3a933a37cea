"""The process tests where spawned workers (Windows, macOS, `WORKER_START_METHOD=spawn`) differ from forked
ones, run here on Linux with `WORKER_START_METHOD=spawn`.

Forked workers inherit the supervisor's memory; spawned ones start a fresh interpreter that imports the
application and reads its settings from the environment. So the chosen tests are those of what a spawned
worker does on its own: start and serve; stop gracefully on SIGTERM (its own signal handlers, not the
supervisor's); be replaced after a kill (a new spawn); the rolling restart through `lastro reload`
(Windows has no SIGHUP), whose schema check then runs in the supervisor itself, as on Windows, refused and
then accepted in one test to start one service instead of two; and writes
from several workers ordered by the write lock with no "database is locked". The writes, the kill and the
stop are steps of one service's life (the `lifetime` fixture), each checked by a test of its own: a spawned
service takes seconds to start on two cores. The rest of the process tests can be run that way with
`LASTRO_TEST_WORKER_START_METHOD=spawn pytest tests/serve`.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lastro.db.migrations import head_revision
from tests.examples.conftest import JSON_ORDER, Api, locked_lines
from tests.serve.test_control import CLOSE, lastro
from tests.serve.test_serve_process import NEXT_REVISION, _spawned
from tests.support.servers import ORDERS_MIGRATIONS, WORKER_START_ENV, serve, wait_for

# Elsewhere (Windows, macOS) every process test spawns its workers already; /proc tells spawned from forked.
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="spawning is the default here")


@pytest.fixture(autouse=True)
def spawned_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKER_START_ENV, "spawn")


@dataclass
class Lifetime:
    """What one service with spawned workers showed, from its start to its SIGTERM."""

    banner: dict[str, Any]
    spawned: list[bool]  # whether each first worker runs a fresh interpreter
    replies: list[int]  # of 40 creates at once
    locked: list[dict[str, Any]]  # log lines saying "database is locked"
    lock_file: bool  # whether the write lock's file exists
    after_kill: list[int]  # statuses of 20 requests once a killed worker was replaced
    in_flight: int  # the status of the request in flight at SIGTERM
    code: int  # the service's exit code


@pytest.fixture(scope="module")
def lifetime(tmp_path_factory: pytest.TempPathFactory) -> Lifetime:
    """One service with spawned workers: 40 creates at once, a worker killed, then SIGTERM mid-request."""
    tmp_path = tmp_path_factory.mktemp("lifetime")
    # Spawned by the setting itself: the autouse fixture that sets WORKER_START_ENV is per test.
    with serve(tmp_path, WORKER_START_METHOD="spawn") as server:
        wait_for(lambda: len(server.worker_pids()) == 2)
        banner = server.events("lastro serving")[0]
        spawned = [_spawned(pid) for pid in server.worker_pids()]
        with Api.login(server.url, "admin", "admin") as api, ThreadPoolExecutor(8) as pool:
            order = {**JSON_ORDER, "customer": "spawned"}
            replies = [
                reply.status_code
                for reply in pool.map(lambda _: api.post("/api/orders", json=order), range(40))
            ]
        locked = locked_lines(server)
        victim = min(server.worker_pids())
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: server.events(f"Child process [{victim}] died"))
        wait_for(lambda: len(server.events("Application startup complete")) == 3, timeout=60)
        with httpx.Client(headers=CLOSE) as client:
            after_kill = [client.get(f"{server.url}/api/ping").status_code for _ in range(20)]
        pinged = len(server.events("ping received"))
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(httpx.get, f"{server.url}/api/ping?delay=1.5", timeout=20)
            wait_for(lambda: len(server.events("ping received")) > pinged)
            server.signal(signal.SIGTERM)
            in_flight = pending.result().status_code
        code = server.process.wait(30)
    lock_file = (tmp_path / "service.db-lastro-lock").exists()
    return Lifetime(banner, spawned, replies, locked, lock_file, after_kill, in_flight, code)


def test_spawned_workers_serve_and_stop_gracefully(lifetime: Lifetime) -> None:
    """The banner says spawn, each worker is a fresh interpreter; on SIGTERM the request in flight gets its
    200 and the service exits 0."""
    assert lifetime.banner["worker_start"] == "spawn"
    assert lifetime.spawned == [True, True]
    assert (lifetime.in_flight, lifetime.code) == (200, 0)


def test_a_killed_worker_is_replaced(lifetime: Lifetime) -> None:
    """A killed spawned worker is replaced by a new spawn and the service keeps answering."""
    assert lifetime.after_kill == [200] * 20


def test_a_reload_waits_for_the_migration_then_replaces_every_worker(tmp_path: Path) -> None:
    """A deploy brings a migration: `lastro reload` is refused (the schema check runs in the supervisor,
    no fork) until `lastro db upgrade`; then it replaces every worker under traffic, refusing nothing."""
    migrations = tmp_path / "migrations"
    shutil.copytree(ORDERS_MIGRATIONS, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    with serve(tmp_path, MIGRATIONS_DIR=str(migrations)) as server:
        wait_for(lambda: len(server.worker_pids()) == 2)
        before = server.worker_pids()
        (migrations / "versions" / "next.py").write_text(NEXT_REVISION.format(head=head_revision(migrations)))
        refused = lastro(server, "reload")
        unchanged = server.worker_pids()
        upgraded = lastro(server, "db", "upgrade", "--migrations", str(migrations))
        statuses: list[int] = []
        done = threading.Event()

        def traffic() -> None:
            while not done.is_set():
                statuses.append(httpx.get(f"{server.url}/api/ping", headers=CLOSE, timeout=20).status_code)

        worker = threading.Thread(target=traffic)
        worker.start()
        try:
            reloaded = lastro(server, "reload")
        finally:
            done.set()
            worker.join()
        wait_for(lambda: len(server.worker_pids()) == 2)
        after = server.worker_pids()
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: reload of lastro serve")
    assert "lastro db upgrade" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    assert unchanged == before
    assert upgraded.returncode == 0
    assert (reloaded.returncode, reloaded.stderr) == (0, "")
    assert "2 workers replaced" in reloaded.stdout
    assert before.isdisjoint(after)
    assert len(after) == 2
    assert len(statuses) > 10
    assert set(statuses) == {200}


def test_spawned_workers_write_in_turn_without_database_locked(lifetime: Lifetime) -> None:
    """40 orders created at once across 2 spawned workers: every answer 201, no "database is locked"."""
    assert set(lifetime.replies) == {201}
    assert lifetime.locked == []
    assert lifetime.lock_file
