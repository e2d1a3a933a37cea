"""Workers that stop (recycled, or replaced on SIGHUP) answer what is on the wire: nobody sees a reset.

`make test` runs the SIGHUP under 8 keep-alive writers; `make faults` (`LASTRO_FAULTS=1`) under 50.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.faults import faults_only
from tests.support.servers import serve, wait_for

PING = b"GET /api/ping HTTP/1.1\r\nHost: localhost\r\n\r\n"
ORDER = b'{"customer":"keep-alive","items":[{"sku":"SKU-1","name":"Widget","quantity":2,"unit_price":19.9}]}'
WRITERS = 50 if os.environ.get("LASTRO_FAULTS") == "1" else 8


def exchange(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request on a raw keep-alive socket: its status, headers and body (by Content-Length)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a response"
        body += chunk
    return int(status_line.split()[1]), headers, body


def until_closed(sock: socket.socket, limit: float) -> list[tuple[int, str | None]]:
    """Requests on one keep-alive connection, 0.2 s apart (idle in between), until an answer closes it."""
    answers: list[tuple[int, str | None]] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status, headers, _ = exchange(sock, PING)
        answers.append((status, headers.get("connection")))
        if headers.get("connection") == "close":
            assert sock.recv(1) == b""  # then an orderly close, no reset
            return answers
        time.sleep(0.2)
    raise AssertionError(f"the worker did not stop within {limit} s")


def test_a_request_on_an_idle_keep_alive_connection_of_a_recycled_worker_is_answered(tmp_path: Path) -> None:
    """MAX_REQUESTS reached: the next request on an idle keep-alive connection gets 200, Connection: close."""
    with (
        serve(tmp_path, WORKERS="1", MAX_REQUESTS="8") as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        answers = until_closed(sock, limit=20)
        recycled = server.events("Maximum request limit")
    assert recycled
    assert set(answers[:-1]) == {(200, None)}
    assert answers[-1] == (200, "close")


@faults_only("the SIGHUP under keep-alive writers and the recycled worker's idle connection cover it")
@pytest.mark.posix
def test_a_request_on_an_idle_keep_alive_connection_at_sighup_is_answered(tmp_path: Path) -> None:
    """SIGHUP with 2 workers: the next request on an idle connection of a stopping worker gets 200, close."""
    with serve(tmp_path) as server:
        wait_for(lambda: len(server.worker_pids()) == 2)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            server.signal(signal.SIGHUP)
            answers = until_closed(sock, limit=60)
    assert set(answers[:-1]) <= {(200, None)}
    assert answers[-1] == (200, "close")


@pytest.mark.posix
def test_a_sighup_under_keep_alive_writers_resets_nothing(tmp_path: Path) -> None:
    """WRITERS writers reusing keep-alive connections through a SIGHUP: every write answered, no reset."""
    with serve(tmp_path, SECRET_KEY="k" * 48) as server:
        token = httpx.post(
            f"{server.url}/api/auth/token", data={"username": "admin", "password": "admin"}, timeout=20
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        statuses: list[int] = []
        errors: list[str] = []
        done = threading.Event()

        def writer() -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=20) as client:
                while not done.is_set():
                    try:
                        statuses.append(client.post("/api/orders", content=ORDER).status_code)
                    except httpx.HTTPError as exc:
                        errors.append(repr(exc))

        threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
        for thread in threads:
            thread.start()
        try:
            # Writes flowing on the writers' connections before the SIGHUP, and on the new workers after it.
            wait_for(lambda: len(statuses) >= 2 * WRITERS, timeout=30)
            server.signal(signal.SIGHUP)
            wait_for(lambda: len(server.events("Finished server process")) == 2, timeout=60)
            replaced = len(statuses)
            wait_for(lambda: len(statuses) >= replaced + 2 * WRITERS, timeout=30)
        finally:
            done.set()
            for thread in threads:
                thread.join(30)
    assert errors == []
    assert statuses.count(201) > 4 * WRITERS
    assert set(statuses) <= {201, 503}  # 503: shed by back-pressure on a loaded machine, never a reset
