"""`lastro drain` and `lastro reload` against a real `lastro serve`: the portable path (no signal), which is
what a Windows service uses, run here on Linux.

The reload under traffic, and its refusal, run with spawned workers as on Windows, in
tests/serve/test_spawned_workers.py: one service for both, which this module's helpers drive.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.support.servers import LASTRO, ROOT, ServeProcess, serve, serve_env, wait_for

CLOSE = {"Connection": "close"}  # a new connection each time, so that every worker gets asked


def lastro(server: ServeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """A `lastro` command run with the service's own settings and working directory."""
    return subprocess.run(
        [LASTRO, *args], env=server.env, cwd=server.cwd, capture_output=True, text=True, timeout=120
    )


def answers_by_worker(server: ServeProcess, workers: int) -> dict[int, tuple[int, str]]:
    """(status code, status) of /health from each worker, asked until every worker has answered."""
    seen: dict[int, tuple[int, str]] = {}

    def every_worker_answered() -> bool:
        document = httpx.get(f"{server.url}/health", headers=CLOSE).json()
        seen[document["pid"]] = (200, document["status"])
        return len(seen) == workers

    wait_for(every_worker_answered)
    return seen


def ready_statuses(server: ServeProcess, count: int = 20) -> set[tuple[int, str]]:
    replies = [httpx.get(f"{server.url}/health/ready", headers=CLOSE) for _ in range(count)]
    return {(reply.status_code, reply.json()["status"]) for reply in replies}


def test_drain_turns_ready_503_on_every_worker_until_drain_off(tmp_path: Path) -> None:
    """`lastro drain`: every worker's ready is 503 "draining", /health says draining, the API still serves;
    `lastro drain --off`: ready is 200 again."""
    with serve(tmp_path) as server:
        wait_for(lambda: len(server.worker_pids()) == 2)
        drained = lastro(server, "drain")
        ready = ready_statuses(server)
        health = answers_by_worker(server, 2)
        pings = {httpx.get(f"{server.url}/api/ping", headers=CLOSE).status_code for _ in range(10)}
        undrained = lastro(server, "drain", "--off")
        ready_again = ready_statuses(server)
    assert (drained.returncode, drained.stderr) == (0, "")
    assert "draining" in drained.stdout
    assert ready == {(503, "draining")}
    assert set(health.values()) == {(200, "draining")}
    assert pings == {200}
    assert undrained.returncode == 0
    assert ready_again == {(200, "ready")}


def test_the_commands_without_a_running_service_fail_naming_the_control_directory(tmp_path: Path) -> None:
    """No service runs with these settings: `lastro drain` and `lastro reload` exit 1 naming CONTROL_DIR."""
    env = serve_env(tmp_path, CONTROL_DIR=str(tmp_path / "control"))
    results = [
        subprocess.run([LASTRO, command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        for command in ("drain", "reload")
    ]
    for result in results:
        assert result.returncode == 1
        assert result.stderr.startswith(f"Error: no lastro serve is running with CONTROL_DIR={tmp_path}")
        assert len(result.stderr.splitlines()) == 1
