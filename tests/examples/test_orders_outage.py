"""A database outage under light traffic: fast 503s while it lasts, recovery without a restart after.

PostgreSQL is reached through a TCP proxy that is stopped and started again; SQLite's file is moved away
and back.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.examples.conftest import (
    JSON_ORDER,
    READY_TIMEOUT,
    SECRET_KEY,
    Api,
    fresh_database,
    is_problem,
    serve_orders,
)
from tests.support.servers import ServeProcess, TcpProxy, wait_for

FAST = 2.0  # seconds: the most any request may take while the database is gone
SETTLE = 2.0  # seconds after the cut by which every worker's watchdog (DB_WATCH_INTERVAL=1) has seen it


@dataclass(frozen=True)
class Sample:
    started: float
    seconds: float
    response: httpx.Response


@dataclass
class Outage:
    """What traffic and probes saw before, during and after the outage."""

    cut_at: float = 0.0
    restored_at: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    ready: list[httpx.Response] = field(default_factory=list)
    live: list[httpx.Response] = field(default_factory=list)
    workers_before: set[int] = field(default_factory=set)
    workers_after: set[int] = field(default_factory=set)
    recovered_at: float = 0.0
    recovered_create: httpx.Response | None = None
    recovered_get: httpx.Response | None = None
    old_order_after: httpx.Response | None = None

    def during(self, settled: bool = False) -> list[Sample]:
        begin = self.cut_at + (SETTLE if settled else 0.0)
        return [s for s in self.samples if begin <= s.started and s.started + s.seconds < self.restored_at]


class Traffic:
    """Light traffic on fresh connections (so every worker gets some): a create, then a read, in a loop."""

    def __init__(self, server: ServeProcess, token: str, order_id: int) -> None:
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_keepalive_connections=0)
        self._client = httpx.Client(base_url=server.url, headers=headers, limits=limits, timeout=10)
        self._order = f"/api/orders/{order_id}"
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._time(lambda: self._client.post("/api/orders", json=JSON_ORDER))
            self._time(lambda: self._client.get(self._order))
            self._stop.wait(0.02)

    def _time(self, call: Callable[[], httpx.Response]) -> None:
        started = time.monotonic()
        response = call()
        self.samples.append(Sample(started, time.monotonic() - started, response))

    def count_since(self, moment: float) -> int:
        return sum(1 for sample in self.samples if sample.started >= moment)


@pytest.fixture(scope="module")
def outage(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    """Serve, cut the database off under traffic, probe, restore, and record everything."""
    directory = tmp_path_factory.mktemp(f"outage-{backend}")
    with fresh_database(backend, directory) as url:
        proxy = TcpProxy(("127.0.0.1", 5432))
        cut: Callable[[], None]
        restore: Callable[[], None]
        if backend == "postgres":
            proxy.start()
            url = url.replace(":5432/", f":{proxy.port}/")
            cut, restore = proxy.stop, proxy.start
        else:
            database, moved = directory / "orders.db", directory / "elsewhere.db"

            def cut() -> None:
                shutil.move(database, moved)

            def restore() -> None:
                shutil.move(moved, database)

        settings = {"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "DB_WATCH_INTERVAL": "1"}
        try:
            with serve_orders(directory, **settings) as server:
                yield _play(server, cut, restore)
        finally:
            proxy.stop()


def _play(server: ServeProcess, cut: Callable[[], None], restore: Callable[[], None]) -> Outage:
    record = Outage()
    wait_for(lambda: len(server.worker_pids()) == 2, timeout=READY_TIMEOUT)
    record.workers_before = server.worker_pids()
    with Api.login(server.url, "admin", "admin") as api:
        old_order = api.create().json()["id"]
        assert api.token is not None
        with Traffic(server, api.token, old_order) as traffic:
            wait_for(lambda: traffic.count_since(0) >= 6)  # healthy traffic first
            record.cut_at = time.monotonic()
            cut()
            try:
                wait_for(lambda: traffic.count_since(record.cut_at + SETTLE) >= 10)
                for _ in range(4):  # fresh connections: several workers answer
                    record.ready.append(httpx.get(f"{server.url}/health/ready", timeout=10))
                    record.live.append(httpx.get(f"{server.url}/health/live", timeout=10))
            finally:
                record.restored_at = time.monotonic()
                restore()
            wait_for(lambda: _ready_everywhere(server), timeout=20)
            wait_for(lambda: api.post("/api/orders", json=JSON_ORDER).status_code == 201, timeout=20)
            record.recovered_create = api.post("/api/orders", json=JSON_ORDER)
            record.recovered_get = api.get(record.recovered_create.headers["location"])
            record.old_order_after = api.get(f"/api/orders/{old_order}")
            record.recovered_at = time.monotonic()
            wait_for(lambda: traffic.count_since(record.recovered_at + SETTLE / 2) >= 4)
        record.samples = traffic.samples
    record.workers_after = server.worker_pids()
    return record


def _ready_everywhere(server: ServeProcess) -> bool:
    return all(httpx.get(f"{server.url}/health/ready", timeout=10).status_code == 200 for _ in range(4))


def test_requests_during_the_outage_get_503_problem_with_retry_after(outage: Outage) -> None:
    """Once every worker has seen the outage, each request gets 503 problem+json with Retry-After."""
    settled = outage.during(settled=True)
    assert len(settled) >= 10
    assert all(is_problem(sample.response, 503) for sample in settled)
    assert all(int(sample.response.headers["retry-after"]) >= 1 for sample in settled)


def test_no_request_during_the_outage_fails_otherwise(outage: Outage) -> None:
    """From the cut on, a request is served (on a connection still open) or refused with 503: no other 5xx."""
    statuses = {sample.response.status_code for sample in outage.during()}
    assert statuses <= {200, 201, 503}


def test_every_request_during_the_outage_answers_within_2_seconds(outage: Outage) -> None:
    """No request waits for the database: each is answered in under 2 s while it is gone."""
    slowest = max(sample.seconds for sample in outage.during())
    assert slowest < FAST


def test_ready_is_503_and_live_is_200_during_the_outage(outage: Outage) -> None:
    """/health/ready answers 503 on every probe while /health/live keeps answering 200."""
    assert [response.status_code for response in outage.ready] == [503] * 4
    failing = [response.json()["failing"] for response in outage.ready]
    assert all("database" in names for names in failing)
    # What lives in the database fails with it: the broadcast's log, the jobs' status, the audit's batches.
    resting_on_it = {"database", "broadcast", "periodic_jobs", "order_audit"}
    assert all(set(names) <= resting_on_it for names in failing), failing
    assert [response.status_code for response in outage.live] == [200] * 4


def test_the_service_recovers_without_a_restart(outage: Outage) -> None:
    """Once the database is back, orders are created and read again by the same worker processes."""
    assert outage.recovered_create is not None
    assert outage.recovered_get is not None
    assert outage.recovered_create.status_code == 201
    assert outage.recovered_get.status_code == 200
    assert outage.workers_after == outage.workers_before


def test_orders_from_before_the_outage_are_still_there(outage: Outage) -> None:
    """An order created before the outage is served unchanged after it."""
    assert outage.old_order_after is not None
    assert outage.old_order_after.status_code == 200
    assert outage.old_order_after.json()["version"] == 1


def test_traffic_is_served_again_after_recovery(outage: Outage) -> None:
    """The traffic that kept running through the outage is all answered with 2xx again once recovered."""
    after = [sample for sample in outage.samples if sample.started >= outage.recovered_at + SETTLE / 2]
    assert len(after) >= 4
    assert {sample.response.status_code for sample in after} <= {200, 201}
