"""Workers die with their supervisor: a `lastro serve` killed by SIGKILL leaves no worker, a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from lastro.serve.orphan import ORPHAN_EXIT_CODE, parent_gone
from tests.support.faults import faults_only
from tests.support.servers import ServeProcess, serve, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def running(pid: int) -> bool:
    """The process exists and is not a zombie (PID 1 in a container may never reap the orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def port_is_free(port: int) -> bool:
    """Binding it as uvicorn does (SO_REUSEADDR) works: no process listens on it any more."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def kill_supervisor_and_time_the_workers(server: ServeProcess) -> tuple[float, bool]:
    """SIGKILL the supervisor; seconds until no worker runs (capped at 5), and whether the port is free."""
    workers = server.worker_pids()
    assert len(workers) == 2
    os.kill(server.process.pid, signal.SIGKILL)
    started = time.monotonic()
    while any(running(pid) for pid in workers) and time.monotonic() - started < 5:
        time.sleep(0.02)
    return time.monotonic() - started, port_is_free(server.port)


def test_workers_stop_within_two_seconds_of_a_killed_supervisor(tmp_path: Path) -> None:
    """kill -9 of the supervisor: both forked workers are gone within 2 s and the port can be bound."""
    with serve(tmp_path) as server:
        wait_for(lambda: len(server.worker_pids()) == 2)
        seconds, free = kill_supervisor_and_time_the_workers(server)
        stopping = server.events("supervisor gone")
    assert seconds < 2
    assert free
    assert {line["parent_pid"] for line in stopping} == {server.process.pid}


def test_a_request_in_flight_holds_an_orphan_no_longer_than_its_grace(tmp_path: Path) -> None:
    """A 5 s request in flight when the supervisor is killed: its worker still ends within 2 s."""
    with serve(tmp_path) as server, ThreadPoolExecutor(1) as pool:
        wait_for(lambda: len(server.worker_pids()) == 2)
        pending = pool.submit(httpx.get, f"{server.url}/api/ping?delay=5", timeout=30)
        wait_for(lambda: server.events("ping received"))
        seconds, free = kill_supervisor_and_time_the_workers(server)
        error = pending.exception()
        ended = server.events("worker ended after its grace")
    assert seconds < 2
    assert free
    assert isinstance(error, httpx.RemoteProtocolError)
    assert len(ended) == 1


@faults_only("the forked workers of a killed supervisor (above) stop the same way")
def test_spawned_workers_also_stop_with_a_killed_supervisor(tmp_path: Path) -> None:
    """After a rolling restart (spawned workers), kill -9 of the supervisor still stops every worker."""
    with serve(tmp_path) as server:
        wait_for(lambda: len(server.worker_pids()) == 2)
        server.signal(signal.SIGHUP)
        wait_for(lambda: len(server.events("Finished server process")) == 2, timeout=30)
        wait_for(lambda: len(server.worker_pids()) == 2)
        seconds, free = kill_supervisor_and_time_the_workers(server)
    assert seconds < 2
    assert free


def test_a_process_whose_parent_lives_is_not_an_orphan() -> None:
    """parent_gone is false for the parent that really started this process, true for any other pid."""
    assert not parent_gone(os.getppid())
    assert parent_gone(os.getppid() + 1_000_000)


def test_a_worker_whose_parent_is_gone_before_it_starts_exits_at_once() -> None:
    """The race before prctl: a recorded parent pid that is not the parent's any more means exit now."""
    code = "import os, time; from lastro.serve.orphan import die_with_parent as die\n"
    code += "die(os.getppid() + 1_000_000); time.sleep(10)"
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], timeout=20)
    assert result.returncode == ORPHAN_EXIT_CODE
    assert time.monotonic() - started < 10
