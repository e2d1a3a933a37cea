"""Slow and idle clients against a real `lastro serve`: they are timed out, and never starve the others."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.servers import serve

SLOW = 150  # of each kind: 300 slow connections against one worker
TIMEOUTS = {"HEADER_TIMEOUT": "2", "BODY_TIMEOUT": "2", "BODY_MIN_RATE": "1000"}
MARGIN = 2.5  # seconds past the timeout for the close to reach a client on 2 busy cores

SLOW_HEADER = b"GET /api/ping HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 60
SLOW_BODY_HEAD = (
    b"POST /api/auth/token HTTP/1.1\r\nHost: localhost\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 60\r\n\r\n"
)
SLOW_BODY = b"username=" + b"u" * 51


@dataclass
class Outcome:
    answer: bytes
    closed_after: float | None  # seconds from the start of the slow part to EOF; None if never closed


async def trickle(port: int, head: bytes, slow: bytes, give_up: float) -> Outcome:
    """Send `head` at once, then `slow` one byte a second, until the server answers and closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    started = time.monotonic()
    answer = b""
    try:
        for byte in slow:
            if answer:
                break  # answered: stop sending, read to the end
            writer.write(bytes([byte]))
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 1.0)
            except TimeoutError:
                continue
            if not chunk:
                return Outcome(answer, time.monotonic() - started)
            answer += chunk
        while time.monotonic() - started < give_up:
            chunk = await asyncio.wait_for(reader.read(4096), give_up)
            if not chunk:
                return Outcome(answer, time.monotonic() - started)
            answer += chunk
    except (ConnectionError, TimeoutError):
        return Outcome(answer, time.monotonic() - started)
    finally:
        writer.close()
    return Outcome(answer, None)


async def slow_clients(port: int) -> list[Outcome]:
    give_up = 2 + MARGIN + 5
    headers = [trickle(port, b"", SLOW_HEADER, give_up) for _ in range(SLOW)]
    bodies = [trickle(port, SLOW_BODY_HEAD, SLOW_BODY, give_up) for _ in range(SLOW)]
    return await asyncio.gather(*headers, *bodies)


def test_slow_headers_and_bodies_are_timed_out_while_others_are_served(tmp_path: Path) -> None:
    """300 one-byte-a-second clients on 1 worker: each gets 408 and EOF in time; probes and pings get 200."""
    with serve(tmp_path, WORKERS="1", **TIMEOUTS) as server:
        statuses: list[tuple[str, int]] = []
        done = threading.Event()

        def probe() -> None:
            with httpx.Client(base_url=server.url, timeout=5) as client:
                # Every 0.05 s: the flood lasts about 4 s, and at 0.2 s a quiet machine probed only 18 times.
                while not done.wait(0.05):
                    for path in ("/health/live", "/api/ping"):
                        statuses.append((path, client.get(path, headers={"Connection": "close"}).status_code))

        prober = threading.Thread(target=probe)
        prober.start()
        try:
            outcomes = asyncio.run(slow_clients(server.port))
        finally:
            done.set()
            prober.join()
        logged = len(server.events("request headers timed out")), len(server.events("request body timed out"))
    header_outcomes, body_outcomes = outcomes[:SLOW], outcomes[SLOW:]
    assert all(outcome.answer.startswith(b"HTTP/1.1 408 ") for outcome in outcomes)
    assert all(b"application/problem+json" in outcome.answer for outcome in outcomes)
    assert max(outcome.closed_after or 99 for outcome in header_outcomes) < 2 + MARGIN
    assert max(outcome.closed_after or 99 for outcome in body_outcomes) < 2 + MARGIN
    assert len(statuses) >= 20
    assert set(statuses) == {("/health/live", 200), ("/api/ping", 200)}
    assert logged == (1, 1)  # one line per kind per interval, not one per connection


def test_live_answers_when_idle_connections_reach_max_connections(tmp_path: Path) -> None:
    """MAX_CONNECTIONS idle sockets: /health/live still 200; other requests 503 problem+json, Retry-After."""
    with serve(tmp_path, WORKERS="1", MAX_CONNECTIONS="20") as server, ExitStack() as stack:
        for _ in range(25):
            stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
        time.sleep(0.2)  # let the worker accept them
        live = httpx.get(f"{server.url}/health/live", timeout=5)
        refused = httpx.get(f"{server.url}/api/ping", timeout=5)
    assert live.status_code == 200
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["connection"] == "close"
    assert "MAX_CONNECTIONS" in refused.json()["detail"]


def test_idle_connections_are_closed_after_the_header_timeout(tmp_path: Path) -> None:
    """A connection that sends nothing is closed, without a response, once HEADER_TIMEOUT passes."""
    with (
        serve(tmp_path, WORKERS="1", HEADER_TIMEOUT="1") as server,
        socket.create_connection(("127.0.0.1", server.port)) as idle,
    ):
        idle.settimeout(5)
        started = time.monotonic()
        received = idle.recv(4096)
        elapsed = time.monotonic() - started
    assert received == b""
    assert 0.8 < elapsed < 3
