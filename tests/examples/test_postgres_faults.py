"""PostgreSQL faults under load between `lastro serve` (2 workers) and the server: nothing lost or hung.

The orders service reaches its own database through a fault-injecting proxy (`tests.support.pg_proxy`):
COMMIT replies lost, the network blackholed, every connection dropped.

`make test` blackholes the network for 6 s, three times the retry deadline and the breaker's reset;
`make faults` (`LASTRO_FAULTS=1`) for 10 s.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import psycopg
import pytest

from tests.examples.conftest import JSON_ORDER, READY_TIMEOUT, SECRET_KEY, Api, fresh_database, serve_orders
from tests.support.pg_proxy import PgProxy
from tests.support.servers import ServeProcess, wait_for

pytestmark = pytest.mark.postgres

DEADLINE = 2.0  # DB_RETRY_DEADLINE of the service
LOST_COMMITS = 20
BLACKHOLE_SECONDS = 10.0 if os.environ.get("LASTRO_FAULTS") == "1" else 6.0


@dataclass
class Service:
    server: ServeProcess
    proxy: PgProxy
    direct_url: str  # the service's database, not through the proxy
    api: Api

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.direct_url.replace("postgresql+psycopg", "postgresql")) as connection:
            return list(connection.execute(query, params))  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp("postgres-faults")
    proxy = PgProxy()
    proxy.start()
    try:
        with fresh_database("postgres", directory) as url:
            settings = {
                "DATABASE_URL": proxy.url(url),
                "SECRET_KEY": SECRET_KEY,
                "DB_RETRY_DEADLINE": str(DEADLINE),
                "HEALTH_CHECK_TIMEOUT": "1",
                "DB_WATCH_INTERVAL": "0.5",
                "DB_CONNECT_TIMEOUT": "2",
                "DB_POOL_SIZE": "4",
                "DB_MAX_OVERFLOW": "2",
            }
            with serve_orders(directory, **settings) as server:
                wait_for(lambda: len(server.worker_pids()) == 2, timeout=READY_TIMEOUT)
                with Api.login(server.url, "admin", "admin") as api:
                    yield Service(server, proxy, url, api)
    finally:
        proxy.restore()
        proxy.stop()


@dataclass
class Sample:
    started: float
    seconds: float
    status: int


@dataclass
class Traffic:
    """Creates and reads on fresh connections (so both workers get some), timed, until stopped."""

    server: ServeProcess
    token: str
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=self.server.url, headers=headers, limits=limits, timeout=15) as client:
            order = client.post("/api/orders", json=JSON_ORDER).headers.get("location", "/api/orders/1")
            while not self._stop.is_set():
                self._time(lambda: client.post("/api/orders", json=JSON_ORDER))
                self._time(lambda: client.get(order))
                self._stop.wait(0.02)

    def _time(self, call: Callable[[], httpx.Response]) -> None:
        started = time.monotonic()
        status = call().status_code
        self.samples.append(Sample(started, time.monotonic() - started, status))


@dataclass
class Background:
    traffic: Traffic
    thread: threading.Thread

    def stop(self) -> list[Sample]:
        self.traffic._stop.set()
        self.thread.join(30)
        return self.traffic.samples


def start_traffic(service: Service) -> Background:
    assert service.api.token is not None
    traffic = Traffic(service.server, service.api.token)
    thread = threading.Thread(target=traffic.run)
    thread.start()
    return Background(traffic, thread)


def status_of(url: str) -> tuple[float, int]:
    started = time.monotonic()
    return started, httpx.get(url, timeout=10).status_code


def test_lost_commit_replies_under_write_load_lose_and_duplicate_nothing(service: Service) -> None:
    """20 COMMIT replies lost amid POSTs, PATCHes and DELETEs: no duplicate, every applied change 2xx."""
    api = service.api
    targets = [api.create(customer=f"target-{i}").json()["id"] for i in range(40)]
    statuses: dict[str, int] = {}

    def post(marker: str) -> None:
        statuses[marker] = api.post("/api/orders", json={**JSON_ORDER, "customer": marker}).status_code

    def patch(order_id: int) -> None:
        response = api.patch(
            f"/api/orders/{order_id}", json={"notes": "patched"}, headers={"If-Match": '"1"'}
        )
        statuses[f"patch-{order_id}"] = response.status_code

    def delete(order_id: int) -> None:
        statuses[f"delete-{order_id}"] = api.delete(
            f"/api/orders/{order_id}", headers={"If-Match": '"1"'}
        ).status_code

    service.proxy.lose_commit_replies(LOST_COMMITS)
    calls = [partial(patch if i % 2 else delete, order_id) for i, order_id in enumerate(targets)]
    for round_number in range(6):  # until the proxy has lost all 20 replies
        calls += [partial(post, f"lost-{round_number}-{i}") for i in range(15)]
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda call: call(), calls))
        calls = []
        if service.proxy.pending_commit_losses == 0:
            break
    assert service.proxy.pending_commit_losses == 0
    assert set(statuses.values()) <= {200, 201, 204}, statuses
    duplicates = service.rows(
        "SELECT customer FROM orders WHERE customer LIKE %s GROUP BY customer HAVING count(*) > 1", "lost-%"
    )
    assert duplicates == []
    stored = {row[0] for row in service.rows("SELECT customer FROM orders WHERE customer LIKE %s", "lost-%")}
    assert stored == {marker for marker in statuses if marker.startswith("lost-")}
    changed = dict(
        service.rows(
            "SELECT id, coalesce(notes, '') || ':' || (deleted_at IS NOT NULL) FROM orders"
            " WHERE id = ANY(%s)",
            targets,
        )
    )
    for i, order_id in enumerate(targets):
        assert changed[order_id] == ("patched:false" if i % 2 else ":true")


def test_a_blackholed_network_answers_within_the_deadline_and_recovers(service: Service) -> None:
    """6 s of silence: every request answered in the deadline + 1 s, ready 503 throughout, live 200."""
    ready: list[Future[tuple[float, int]]] = []
    live: list[Future[tuple[float, int]]] = []
    background = start_traffic(service)
    wait_for(lambda: len(background.traffic.samples) >= 6)
    service.proxy.blackhole()
    cut_at = time.monotonic()
    try:
        time.sleep(1.0)
        with ThreadPoolExecutor(16) as pool:  # a probe takes HEALTH_CHECK_TIMEOUT to fail: overlap them
            while time.monotonic() < cut_at + BLACKHOLE_SECONDS:
                ready.append(pool.submit(status_of, f"{service.server.url}/health/ready"))
                live.append(pool.submit(status_of, f"{service.server.url}/health/live"))
                time.sleep(0.25)
            wait([*ready, *live])
    finally:
        service.proxy.restore()
    restored_at = time.monotonic()
    wait_for(lambda: service.api.post("/api/orders", json=JSON_ORDER).status_code == 201, timeout=10)
    recovered_in = time.monotonic() - restored_at
    time.sleep(0.5)
    samples = background.stop()
    during = [sample for sample in samples if sample.started >= cut_at]
    assert len(during) >= 10
    assert max(sample.seconds for sample in during) < DEADLINE + 1
    assert {sample.status for sample in during} <= {200, 201, 503, 504}
    assert len(ready) >= 2 * (BLACKHOLE_SECONDS - 1)  # a poll every 0.25 s, from 1 s in
    assert {status for _, status in (poll.result() for poll in ready)} == {503}
    assert {status for _, status in (poll.result() for poll in live)} == {200}
    assert recovered_in < 2.0


def test_dropping_every_connection_costs_a_handful_of_503s_and_keeps_the_breaker_closed(
    service: Service,
) -> None:
    """Every connection closed three times under traffic: units re-run on new connections, breaker closed."""
    unreachable_before = len(service.server.events("database unreachable"))
    background = start_traffic(service)
    wait_for(lambda: len(background.traffic.samples) >= 6)
    started = time.monotonic()
    breakers: list[str] = []
    for _ in range(3):
        assert service.proxy.drop_all() >= 1
        time.sleep(0.7)
        for _ in range(2):
            detail = httpx.get(f"{service.server.url}/health", timeout=10).json()
            breakers.append(detail["checks"]["database"]["breaker"]["state"])
    samples = [sample for sample in background.stop() if sample.started >= started]
    assert len(samples) >= 10
    assert sum(sample.status == 503 for sample in samples) <= 3
    assert {sample.status for sample in samples} <= {200, 201, 503}
    assert set(breakers) == {"closed"}
    assert len(service.server.events("database unreachable")) == unreachable_before
