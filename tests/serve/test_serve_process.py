"""`lastro serve` as users run it: a real supervisor with real workers on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lastro.db.migrations import head_revision
from lastro.serve.supervisor import can_fork
from tests.support.databases import create_database, database_name, drop_database, postgres_url_for
from tests.support.servers import LASTRO, ORDERS_MIGRATIONS, ServeProcess, TcpProxy, serve, wait_for

CLOSE = {"Connection": "close"}  # a fresh connection per request: what a recycled worker must not drop


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One service for the tests that only look at it: each start costs seconds on a loaded machine."""
    with serve(tmp_path_factory.mktemp("served")) as server:
        yield server


def test_banner_names_host_port_workers_server_loop_and_pid(served: ServeProcess) -> None:
    """The supervisor logs one banner with everything an operator checks first."""
    server = served
    banner = server.events("lastro serving")[0]
    assert banner["host"] == "127.0.0.1"
    assert banner["port"] == server.port
    assert banner["workers"] == 2
    assert banner["server"].startswith("uvicorn ")
    assert banner["event_loop"] in {"uvloop", "asyncio"}
    assert banner["pid"] == server.process.pid


def test_two_workers_answer(served: ServeProcess) -> None:
    """Requests are served by more than one worker process."""
    server = served
    wait_for(lambda: len(server.worker_pids()) == 2)
    assert len(server.worker_pids()) == 2
    assert server.process.pid not in server.worker_pids()


def test_health_endpoints_answer_with_their_codes(served: ServeProcess) -> None:
    """live, ready and the detailed document all answer 200 on a healthy service."""
    server = served
    live = httpx.get(f"{server.url}/health/live")
    ready = httpx.get(f"{server.url}/health/ready")
    detail = httpx.get(f"{server.url}/health")
    workers = server.worker_pids()
    assert (live.status_code, ready.status_code, detail.status_code) == (200, 200, 200)
    document = detail.json()
    assert document["status"] == "healthy"
    assert document["checks"]["database"]["status"] == "ok"
    assert set(document["checks"]["connection_pool"]) >= {"size", "checked_in", "checked_out", "overflow"}
    assert document["pid"] in workers
    assert document["uptime_seconds"] >= 0


def test_ready_turns_503_when_the_database_file_goes_and_recovers(tmp_path: Path) -> None:
    """Moving the SQLite file away makes ready and /health 503 while live stays 200; moving it back heals."""
    with serve(tmp_path) as server:
        wait_for(lambda: len(server.worker_pids()) == 2)  # both started: the move hits running workers
        database = tmp_path / "service.db"
        moved = tmp_path / "elsewhere.db"
        shutil.move(database, moved)
        ready = httpx.get(f"{server.url}/health/ready")
        detail = httpx.get(f"{server.url}/health")
        live = httpx.get(f"{server.url}/health/live")
        shutil.move(moved, database)
        healed = httpx.get(f"{server.url}/health/ready")
    assert ready.status_code == 503
    # A periodic job that ran while the file was away failed too; nothing else did.
    assert "database" in ready.json()["failing"]
    assert set(ready.json()["failing"]) <= {"database", "periodic_jobs"}
    assert detail.status_code == 503
    assert detail.json()["status"] == "unhealthy"
    assert live.status_code == 200
    assert healed.status_code == 200


def test_request_id_round_trips_and_is_in_every_log_line(served: ServeProcess) -> None:
    """A well-formed X-Request-ID is echoed and appears in the access line and the app's own line."""
    server = served
    response = httpx.get(f"{server.url}/api/ping", headers={"X-Request-ID": "trace-0123456789"})

    def lines_of_request() -> list[dict[str, object]]:
        return [line for line in server.logs() if line.get("request_id") == "trace-0123456789"]

    wait_for(lambda: any(line["event"] == "request" for line in lines_of_request()))
    lines = lines_of_request()
    assert response.headers["x-request-id"] == "trace-0123456789"
    events = {line["event"] for line in lines}
    assert {"ping received", "request"} <= events
    access = next(line for line in lines if line["event"] == "request")
    assert access["route"] == "/api/ping"
    assert access["status"] == 200
    assert access["method"] == "GET"
    assert access["duration_ms"] >= 0
    assert access["client"].startswith("127.0.0.1:")
    assert access["pid"] != server.process.pid  # written by the worker, not the supervisor


def test_malformed_request_id_is_replaced(served: ServeProcess) -> None:
    """An X-Request-ID with unsafe characters is not echoed; a generated id is returned instead."""
    response = httpx.get(f"{served.url}/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert len(response.headers["x-request-id"]) == 32


@pytest.mark.posix
def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(tmp_path: Path) -> None:
    """A request in flight when SIGTERM arrives still gets its 200; shutdown hooks run; exit code 0."""
    with serve(tmp_path) as server:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(httpx.get, f"{server.url}/api/ping?delay=1.5", timeout=20)
            wait_for(lambda: server.events("ping received"))
            server.signal(signal.SIGTERM)
            response = pending.result()
        code = server.process.wait(30)
        logs = server.logs()
    assert response.status_code == 200
    assert code == 0
    assert sum(line["event"] == "shutdown complete" for line in logs) == 2


@pytest.mark.posix
def test_a_killed_worker_is_replaced(tmp_path: Path) -> None:
    """SIGKILL on a worker: the supervisor starts a new one and the service keeps answering."""
    with serve(tmp_path) as server:
        wait_for(lambda: len(server.worker_pids()) == 2)
        victim = min(server.worker_pids())
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: server.events(f"Child process [{victim}] died"))
        wait_for(lambda: len(server.events("Application startup complete")) == 3)
        with httpx.Client(headers=CLOSE) as client:
            statuses = [client.get(f"{server.url}/api/ping").status_code for _ in range(20)]
    assert statuses == [200] * 20


def test_workers_are_recycled_after_max_requests_without_a_failed_request(tmp_path: Path) -> None:
    """With MAX_REQUESTS=25 (+ up to 5 jitter), requests until two recycled workers are replaced: all 200."""
    with (
        serve(tmp_path, MAX_REQUESTS="25", MAX_REQUESTS_JITTER="5") as server,
        httpx.Client(headers=CLOSE, timeout=20) as client,
    ):
        statuses: list[int] = []
        # Requests flow through both recycles: until two replacements have started, then on them.
        while len(server.events("Application startup complete")) < 4 and len(statuses) < 1000:
            statuses += [client.get(f"{server.url}/api/ping").status_code for _ in range(10)]
        statuses += [client.get(f"{server.url}/api/ping").status_code for _ in range(20)]
        recycled = server.events("Maximum request limit")
    assert statuses == [200] * len(statuses)
    assert len(recycled) >= 2
    limits = {int(line["event"].split("of ")[1].split(" ")[0]) for line in recycled}
    assert all(25 <= limit <= 30 for limit in limits)


def _spawned(pid: int) -> bool:
    """A spawned worker runs a fresh interpreter (multiprocessing's spawn_main); a forked one does not."""
    return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()


NEXT_REVISION = """revision = "next"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
"""


@dataclass
class Deploy:
    """What one service showed through a deploy: a SIGHUP refused, `lastro db upgrade`, a SIGHUP under
    traffic."""

    first: set[int]  # the workers at start
    first_spawned: list[bool]  # whether each was spawned rather than forked (Linux only)
    refused: list[dict[str, Any]]  # the log lines of the refused SIGHUP
    kept: set[int]  # the workers after it
    status: int  # of a request after it
    replaced: set[int]  # the workers after the SIGHUP that followed the upgrade
    replaced_spawned: list[bool]  # whether each of those was spawned (Linux only)
    statuses: list[int]  # of the requests sent while it ran


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Deploy:
    """One service through a deploy: its tests each check one step, for one start instead of three.

    The workers start forked (`auto`, whatever LASTRO_TEST_WORKER_START_METHOD says; tests/serve/
    test_spawned_workers.py runs such a deploy with spawned workers)."""
    tmp_path = tmp_path_factory.mktemp("deploy")
    migrations = tmp_path / "migrations"
    shutil.copytree(ORDERS_MIGRATIONS, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    with serve(tmp_path, MIGRATIONS_DIR=str(migrations), WORKER_START_METHOD="auto") as server:
        wait_for(lambda: len(server.worker_pids()) == 2)
        first = server.worker_pids()
        first_spawned = [_spawned(pid) for pid in first] if can_fork() else []
        (migrations / "versions" / "next.py").write_text(NEXT_REVISION.format(head=head_revision(migrations)))
        server.signal(signal.SIGHUP)
        refused = wait_for(lambda: server.events("Rolling restart refused"))
        status = httpx.get(f"{server.url}/api/ping").status_code
        kept = server.worker_pids()
        upgrade = [LASTRO, "db", "upgrade", "--migrations", str(migrations)]
        subprocess.run(upgrade, env=server.env, cwd=server.cwd, capture_output=True, timeout=120, check=True)
        statuses: list[int] = []
        done = threading.Event()

        def traffic() -> None:
            while not done.is_set():
                statuses.append(httpx.get(f"{server.url}/api/ping", headers=CLOSE, timeout=20).status_code)

        worker = threading.Thread(target=traffic)
        worker.start()
        try:
            server.signal(signal.SIGHUP)
            wait_for(lambda: len(server.events("Finished server process")) == 2, timeout=30)
        finally:
            done.set()
            worker.join()
        wait_for(lambda: len(server.worker_pids()) == 2)
        replaced = server.worker_pids()
        replaced_spawned = [_spawned(pid) for pid in replaced] if can_fork() else []
    return Deploy(first, first_spawned, refused, kept, status, replaced, replaced_spawned, statuses)


@pytest.mark.posix
@pytest.mark.skipif(not can_fork(), reason="workers are forked on Linux only")
def test_workers_are_forked_then_spawned_after_a_rolling_restart(deploy: Deploy) -> None:
    """At start the workers are forked from the supervisor; after SIGHUP (a deploy) they load from disk."""
    assert deploy.first_spawned == [False, False]
    assert deploy.replaced_spawned == [True, True]


@pytest.mark.posix
def test_a_rolling_restart_onto_unapplied_migrations_is_refused(deploy: Deploy) -> None:
    """SIGHUP after a deploy brought a migration nobody ran: refused; the old workers keep serving."""
    assert "lastro db upgrade" in deploy.refused[0]["event"]
    assert deploy.kept == deploy.first
    assert deploy.status == 200


@pytest.mark.posix
def test_sighup_replaces_every_worker_without_failing_requests(deploy: Deploy) -> None:
    """SIGHUP restarts the workers one by one while traffic flows; no request fails."""
    assert deploy.first.isdisjoint(deploy.replaced)
    assert len(deploy.replaced) == 2
    assert deploy.statuses
    assert set(deploy.statuses) == {200}


def test_back_pressure_answers_503_problem_with_retry_after(tmp_path: Path) -> None:
    """Over MAX_IN_FLIGHT, a worker answers 503 problem+json with Retry-After at once."""
    with serve(tmp_path, WORKERS="1", MAX_IN_FLIGHT="2") as server, ThreadPoolExecutor(2) as pool:
        slow = [pool.submit(httpx.get, f"{server.url}/api/ping?delay=2", timeout=20) for _ in range(2)]
        wait_for(lambda: len(server.events("ping received")) == 2)
        refused = httpx.get(f"{server.url}/api/ping", timeout=20)
        health = httpx.get(f"{server.url}/health/live", timeout=20)
        admitted = [future.result().status_code for future in slow]
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    assert refused.elapsed.total_seconds() < 1
    assert refused.json()["status"] == 503
    assert health.status_code == 200
    assert admitted == [200, 200]


def test_back_pressure_sheds_requests_delayed_by_a_blocked_event_loop(tmp_path: Path) -> None:
    """Requests that wait for a loop held by a handler past MAX_LOOP_LAG are shed with 503 at once."""
    app = ("tests.support.apps:blocking_app", "--factory")
    with serve(tmp_path, *app, WORKERS="1", MAX_LOOP_LAG="0.3") as server, ThreadPoolExecutor(6) as pool:
        first = pool.submit(httpx.get, f"{server.url}/block?seconds=1", timeout=30)
        wait_for(lambda: len(server.events("block ran")) == 1)
        queued = [pool.submit(httpx.get, f"{server.url}/block?seconds=0.2", timeout=30) for _ in range(5)]
        responses = [first.result(), *(future.result() for future in queued)]
        ran = len(server.events("block ran"))
    statuses = [response.status_code for response in responses]
    refused = [response for response in responses if response.status_code == 503]
    assert statuses[0] == 200
    assert set(statuses) == {200, 503}
    assert ran == statuses.count(200)
    assert all(response.headers["content-type"] == "application/problem+json" for response in refused)
    assert all(
        response.headers["retry-after"] == "1" and "x-request-id" in response.headers for response in refused
    )


@pytest.mark.postgres
def test_postgres_outage_turns_ready_503_and_heals_without_a_restart(tmp_path: Path) -> None:
    """PostgreSQL behind a proxy: down → ready 503 and live 200 at once; back → ready 200, same workers."""
    name = database_name("lastro_serve")
    create_database(name)
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.start()
    try:
        url = postgres_url_for(name, port=proxy.port)
        with serve(tmp_path, DATABASE_URL=url) as server:
            wait_for(lambda: len(server.worker_pids()) == 2)
            workers = server.worker_pids()
            before = httpx.get(f"{server.url}/health/ready", timeout=10)
            proxy.stop()
            down = wait_for(lambda: _status_if(server.url, 503), timeout=10)
            live = httpx.get(f"{server.url}/health/live", timeout=10)
            proxy.start()
            # Ready once the database answers; nothing failing once the broadcast has reconnected too.
            healed = wait_for(lambda: _nothing_failing(server.url), timeout=15)
            after = server.worker_pids()
    finally:
        proxy.stop()
        drop_database(name)
    assert before.status_code == 200
    assert down.json()["status"] == "not ready"
    # The broadcast listens on the database and the jobs keep their status in it: they fail with it.
    assert set(down.json()["failing"]) <= {"database", "broadcast", "periodic_jobs"}
    assert "database" in down.json()["failing"]
    assert live.status_code == 200
    assert live.elapsed.total_seconds() < 1
    assert healed.json() == {"status": "ready", "failing": []}
    assert after == workers


def _nothing_failing(base_url: str) -> httpx.Response | None:
    """The /health/ready response if it is 200 with no check failing, else None (for wait_for)."""
    response = _status_if(base_url, 200)
    return response if response is not None and not response.json()["failing"] else None


def _status_if(base_url: str, status: int) -> httpx.Response | None:
    """The /health/ready response if it has `status`, else None (for wait_for)."""
    response = httpx.get(f"{base_url}/health/ready", timeout=10)
    return response if response.status_code == status else None
