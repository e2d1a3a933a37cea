"""A worker whose event loop is held past TIMEOUT is replaced, and its log line says where and for whom."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from lastro.observability.watchdog import WATCHDOG_EXIT_CODE
from tests.support.process import ServerProcess
from tests.support.servers import free_port, serve, serve_env, wait_for

TIMEOUT = 2.0
BLOCKING_APP = ("tests.support.apps:blocking_app", "--factory")
REQUEST_ID = "blocked-0123456789"


def live_answers_within_a_second(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/live", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_worker_holding_its_loop_is_replaced_and_logs_its_stack_and_requests(tmp_path: Path) -> None:
    """/block holds the loop for three TIMEOUTs: replaced within TIMEOUT + 2 s, stack and request logged."""
    with serve(tmp_path, *BLOCKING_APP, TIMEOUT=str(TIMEOUT)) as server, ThreadPoolExecutor(1) as pool:
        wait_for(lambda: len(server.worker_pids()) == 2)
        headers = {"X-Request-ID": REQUEST_ID}
        blocked = pool.submit(
            httpx.get, f"{server.url}/block?seconds={3 * TIMEOUT}", headers=headers, timeout=30
        )
        started = time.monotonic()
        wait_for(lambda: server.events("block ran"), timeout=5)
        live = []
        while len(server.events("Application startup complete")) < 3 and time.monotonic() - started < 10:
            live.append(live_answers_within_a_second(server.url))
        replaced_after = time.monotonic() - started
        error = blocked.exception()
        [report] = server.events("event loop blocked")
        died = server.events(f"Child process [{report['pid']}] died")
    assert replaced_after < TIMEOUT + 2
    assert isinstance(error, httpx.RemoteProtocolError)  # the worker went before it answered
    assert any(live)
    assert report["level"] == "error"
    assert report["timeout"] == TIMEOUT
    assert report["blocked_seconds"] >= TIMEOUT
    assert "in block" in report["stack"]
    assert "time.sleep(seconds)" in report["stack"]
    [request] = report["requests"]
    assert (request["path"], request["route"], request["request_id"]) == ("/block", "/block", REQUEST_ID)
    assert f"(exit code {WATCHDOG_EXIT_CODE})" in died[0]["event"]


def test_under_plain_uvicorn_the_process_exits_with_the_watchdog_code(tmp_path: Path) -> None:
    """Served by `uvicorn` alone, the held worker logs the same line and exits 70 for its manager."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", BLOCKING_APP[0], "--factory", "--port", str(port)]
    env = serve_env(tmp_path, TIMEOUT=str(TIMEOUT))
    plain = ServerProcess(command, env, tmp_path / "uvicorn.log", port=port, ready_path="/health/live")
    with plain as server, ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        pending = pool.submit(httpx.get, f"{server.url}/block?seconds=6", timeout=30)
        code = server.process.wait(TIMEOUT + 5)
        exited_after = time.monotonic() - started
        error = pending.exception()
        [report] = [line for line in server.logs() if line.get("event") == "event loop blocked, worker exits"]
    assert code == WATCHDOG_EXIT_CODE
    assert exited_after < TIMEOUT + 2
    assert isinstance(error, httpx.RemoteProtocolError)
    assert "in block" in report["stack"]
