"""A login flood: 200 parallel wrong-password logins against 2 workers of the orders service on SQLite.

Argon2id takes 64 MiB and a good part of a core per hash. Unbounded, the flood took each worker from
68 MB to 2.5 GiB and starved the threads the database probe and other routes need. With the hashing
bulkhead, each worker computes at most AUTH_HASH_CONCURRENCY hashes at once, the logins beyond it are
refused with a 503 after AUTH_HASH_WAIT, and everything else keeps answering.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from tests.examples.conftest import Api, is_problem, orders_service

pytestmark = pytest.mark.posix  # each worker's memory is read from /proc

FLOOD = 200  # parallel logins
HASHING = 2  # AUTH_HASH_CONCURRENCY of the service under test
HASH_BYTES = PasswordHasher().memory_cost * 1024  # what one Argon2id hash allocates
SLACK = 50 * 1024 * 1024  # allocator, thread stacks and 200 requests on top of the hashes
LIVE_WITHIN = 0.1  # seconds /health/live may take, flood or not
# The share of probes that must meet it. Not all: on this shared 2-core machine, a burst of 100 requests
# per worker or another suite running alongside can stall a process for a moment, flood of hashes or not.
SHARE = 0.95
FAST_REFUSAL = 1.0  # seconds a 503 from another route may take
DEADLINE = 120.0  # seconds the whole flood may take before the test gives up


@dataclass
class Timed:
    at: float  # wall clock, comparable with the flood process's
    seconds: float
    status: int


@dataclass
class Flood:
    """What the flood's logins got and what the probes saw while it lasted."""

    idle_rss: dict[int, int]
    peak_rss: dict[int, int] = field(default_factory=dict)
    logins: list[Login] = field(default_factory=list)
    live: list[Timed] = field(default_factory=list)
    other: list[Timed] = field(default_factory=list)
    log_lines: list[dict[str, object]] = field(default_factory=list)

    def during(self, probes: list[Timed]) -> list[Timed]:
        """The probes that overlapped the flood."""
        began = min(login.at for login in self.logins)
        ended = max(login.at + login.seconds for login in self.logins)
        return [probe for probe in probes if probe.at + probe.seconds >= began and probe.at <= ended]


def rss(pid: int) -> int:
    """The process's resident memory in bytes, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


@dataclass(frozen=True)
class Login:
    at: float  # wall clock when the flood was sent
    seconds: float
    status: int
    is_problem: bool
    retry_after: str | None


def wrong_logins(url: str) -> list[Login]:
    """FLOOD parallel wrong-password logins, in a process of its own: the probes must not wait for its GIL."""

    async def flood() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=FLOOD, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
            form = {"username": "admin", "password": "not the password"}
            logins = (client.post("/api/auth/token", data=form) for _ in range(FLOOD))
            return await asyncio.wait_for(asyncio.gather(*logins), DEADLINE)

    at = time.time()
    return [
        Login(
            at,
            response.elapsed.total_seconds(),
            response.status_code,
            is_problem(response, response.status_code),
            response.headers.get("Retry-After"),
        )
        for response in asyncio.run(flood())
    ]


def _timed(call: Callable[[], httpx.Response]) -> Timed:
    at, started = time.time(), time.perf_counter()
    try:
        status = call().status_code
    except httpx.HTTPError:
        status = 0
    return Timed(at, time.perf_counter() - started, status)


def _repeat_until(done: threading.Event, action: Callable[[], None]) -> threading.Thread:
    def loop() -> None:
        deadline = time.monotonic() + DEADLINE
        while not done.is_set() and time.monotonic() < deadline:
            action()
            time.sleep(0.02)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flood]:
    directory = tmp_path_factory.mktemp("login-flood")
    settings = {"AUTH_HASH_CONCURRENCY": str(HASHING), "AUTH_HASH_WAIT": "1"}
    with (
        orders_service("sqlite", directory, **settings) as server,
        Api.login(server.url, "admin", "admin") as admin,
    ):
        order = admin.create().json()
        pids = server.worker_pids()
        assert len(pids) == 2
        result = Flood(idle_rss={pid: rss(pid) for pid in pids})
        result.peak_rss = dict(result.idle_rss)

        def sample_memory() -> None:
            for pid in pids:
                result.peak_rss[pid] = max(result.peak_rss[pid], rss(pid))

        # A new connection per probe, so both workers are asked; one client, as making one costs ~50 ms.
        probe_client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=5)

        def probe_live() -> None:
            result.live.append(_timed(lambda: probe_client.get(f"{server.url}/health/live")))

        def probe_other() -> None:
            result.other.append(_timed(lambda: admin.get(f"/api/orders/{order['id']}", timeout=10)))

        done = threading.Event()
        probes = [_repeat_until(done, action) for action in (sample_memory, probe_live, probe_other)]
        try:
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as client:
                result.logins = client.submit(wrong_logins, server.url).result(DEADLINE)
        finally:
            done.set()
            for probe in probes:
                probe.join(15)
            probe_client.close()
        result.log_lines = server.logs()
        yield result


def test_worker_memory_stays_within_the_hashing_capacity(flood: Flood) -> None:
    """No worker grows past its idle size plus AUTH_HASH_CONCURRENCY hashes of 64 MiB, plus 50 MB."""
    for pid, idle in flood.idle_rss.items():
        assert flood.peak_rss[pid] < idle + HASHING * HASH_BYTES + SLACK, (pid, idle, flood.peak_rss[pid])


def test_liveness_answers_within_100_ms_throughout(flood: Flood) -> None:
    """Every /health/live during the flood is a 200, and 95% of them come within 100 ms."""
    live = flood.during(flood.live)
    assert len(live) >= 10
    assert [probe for probe in live if probe.status != 200] == []
    assert _share(live, lambda probe: probe.seconds <= LIVE_WITHIN) >= SHARE


def test_other_routes_keep_answering(flood: Flood) -> None:
    """An authenticated GET during the flood gets a 200 or a fast 503; 95% of them are 200 within 100 ms."""
    other = flood.during(flood.other)
    assert len(other) >= 10
    assert [probe for probe in other if probe.status not in (200, 503)] == []
    assert [probe for probe in other if probe.status == 503 and probe.seconds > FAST_REFUSAL] == []
    assert _share(other, lambda probe: probe.status == 200 and probe.seconds <= LIVE_WITHIN) >= SHARE


def _share(probes: list[Timed], condition: Callable[[Timed], bool]) -> float:
    return sum(map(condition, probes)) / len(probes)


def test_logins_beyond_the_bulkhead_get_503_the_rest_401(flood: Flood) -> None:
    """Each wrong login is a 401 or a 503 problem with Retry-After; both happen, no 500."""
    statuses = [login.status for login in flood.logins]
    assert len(statuses) == FLOOD
    assert set(statuses) == {401, 503}, sorted(set(statuses))
    assert all(login.is_problem for login in flood.logins)
    assert all(login.retry_after == "1" for login in flood.logins if login.status == 503)


def test_refusals_are_logged_in_a_few_lines(flood: Flood) -> None:
    """The refusals show up as a few `bulkhead full` warnings, not one line per refused login."""
    lines = [line for line in flood.log_lines if line.get("event") == "bulkhead full"]
    refused = sum(login.status == 503 for login in flood.logins)
    assert 1 <= len(lines) <= 4  # per worker: one, then at most one per 10 s
    assert all(line["bulkhead"] == "password hashing" and line["level"] == "warning" for line in lines)
    assert sum(int(str(line["refused"])) for line in lines) <= refused
