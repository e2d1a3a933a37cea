"""`WS /api/orders/events` end to end: real `lastro serve` processes, 20 WebSocket clients in 2 tenants, and
another client creating and updating 500 orders (100 across two machines).

Every client must receive every event of its own tenant, none of the other's, each order's in the order of
its versions: on one machine of 4 workers (SQLite), on two machines sharing Redis, on two sharing only
PostgreSQL. A client that comes back `since` its last id receives exactly what it missed; a Redis restart
in the middle of the stream gives clients a gap or a replay, never a hang, and delivery resumes within 5 s.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.coordination.test_redis_events import PrivateRedis
from tests.examples.conftest import (
    SECRET_KEY,
    Api,
    fresh_database,
    migrate_orders,
    orders_service,
    start_orders,
)
from tests.support.event_clients import (
    Listener,
    Written,
    broadcast,
    delivery_latencies,
    percentile,
    write_orders,
)
from tests.support.pg_proxy import PgProxy
from tests.support.servers import ServeProcess

ORDERS = 500  # created and updated: 2 events each, 500 per tenant
# Across machines the question is whether the other machine's clients hear at all, not the volume: fewer.
ORDERS_ACROSS_MACHINES = 100
CLIENTS = 20
TENANTS = 2
RESUMED_WITHIN = 5.0
logger = logging.getLogger(__name__)
RUN_TIMEOUT = 90.0  # the whole scenario; each frame has its own idle timeout besides
# Writes as fast as the client sends them: no rate limit or load shedding in the way.
BUSY = {"RATE_LIMIT_DEFAULT": "1000000/minute", "MAX_LOOP_LAG": "0"}


def tenants(server: ServeProcess) -> dict[int, str]:
    """Two new tenants of the service, each with one user: their tokens, by tenant label 0 and 1."""
    with Api.login(server.url, "admin", "admin") as admin:
        users = [admin.new_tenant(f"events{label}") for label in range(TENANTS)]
    tokens = {label: str(user.token) for label, user in enumerate(users)}
    for user in users:
        user.close()
    return tokens


def run_broadcast(
    client_urls: Sequence[str], writer_urls: Sequence[str], tokens: dict[int, str], orders: int = ORDERS
) -> tuple[list[Listener], Written]:
    """20 clients spread over the services and tenants; once all are subscribed, `orders` are written."""
    scenario = broadcast(
        client_urls, writer_urls, tokens, clients=CLIENTS, orders=orders, deadline=RUN_TIMEOUT
    )
    return asyncio.run(scenario)


def check_every_client(listeners: Sequence[Listener], written: Written) -> None:
    """Each client: every event of its tenant once, none of the other's, each order's versions rising."""
    assert written.refused == 0
    for listener in listeners:
        mine = set(written.orders[listener.tenant])
        received = [(event["order_id"], event["type"]) for event in listener.events]
        assert sorted(received) == sorted(
            (order_id, kind) for order_id in mine for kind in ("order.created", "order.updated")
        )
        versions: dict[int, int] = {}
        for event in listener.events:
            assert event["version"] > versions.get(event["order_id"], 0), event
            versions[event["order_id"]] = event["version"]


def record_latency(listeners: Sequence[Listener]) -> None:
    """The delivery latency's p50 and p99 in the test's log (`-o log_cli=true` shows it)."""
    latencies = delivery_latencies(listeners)
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    logger.info("delivery latency over %d deliveries: p50 %.1f ms, p99 %.1f ms", len(latencies), p50, p99)


def machine(directory: Path, n: int) -> Path:
    """The directory of machine `n`: its log, and its SQLite file if it has one."""
    path = directory / f"machine{n}"
    path.mkdir(exist_ok=True)
    return path


def machines(stack: ExitStack, directory: Path, urls: Sequence[str], **settings: str) -> list[ServeProcess]:
    """One `lastro serve` of the orders app per DATABASE_URL in `urls` (each migrated already), their
    start-ups overlapping (`start_orders`); stopped when `stack` closes."""
    return start_orders(
        stack, [(machine(directory, n), {"DATABASE_URL": url, **settings}) for n, url in enumerate(urls)]
    )


def sqlite_machines(stack: ExitStack, directory: Path, count: int, **settings: str) -> list[ServeProcess]:
    """`count` machines with a migrated SQLite file each, as `orders_service("sqlite", …)` makes one."""
    urls = [f"sqlite:///{machine(directory, n) / 'orders.db'}" for n in range(count)]
    for n, url in enumerate(urls):
        migrate_orders(machine(directory, n), DATABASE_URL=url)
    return machines(stack, directory, urls, SECRET_KEY=SECRET_KEY, **settings)


def migrated(url: str, directory: Path) -> str:
    """`url`, once its (new, empty) database holds the orders schema."""
    migrate_orders(directory, DATABASE_URL=url)
    return url


@pytest.fixture(scope="module")
def sqlite_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One machine, 4 workers, SQLite: the broadcast goes through the file's events table."""
    with orders_service("sqlite", tmp_path_factory.mktemp("events-sqlite"), WORKERS="4", **BUSY) as server:
        yield server


def test_every_client_receives_its_tenants_events_across_four_workers(sqlite_service: ServeProcess) -> None:
    """4 workers, 20 clients, 2 tenants, 500 orders created and updated: all delivered, isolated, in order."""
    tokens = tenants(sqlite_service)
    listeners, written = run_broadcast([sqlite_service.url], [sqlite_service.url], tokens)
    check_every_client(listeners, written)
    record_latency(listeners)


@pytest.mark.redis
def test_two_machines_sharing_redis_deliver_every_event(tmp_path: Path) -> None:
    """Two instances with a SQLite file each and one Redis: clients of both receive what one wrote."""
    settings = {
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "INSTANCES": "2",
        "WORKERS": "2",
        "SERVICE_NAME": f"lastro-test-{uuid.uuid4().hex[:8]}",
        **BUSY,
    }
    with ExitStack() as stack:
        servers = sqlite_machines(stack, tmp_path, 2, **settings)
        tokens = tenants(servers[0])  # the same SECRET_KEY: machine 1 accepts them too
        listeners, written = run_broadcast(
            [s.url for s in servers], [servers[0].url], tokens, ORDERS_ACROSS_MACHINES
        )
    check_every_client(listeners, written)
    assert {listener.url for listener in listeners} == {s.url for s in servers}
    record_latency(listeners)


@pytest.mark.postgres
def test_two_machines_sharing_only_postgresql_deliver_every_event(tmp_path: Path) -> None:
    """Two instances on one PostgreSQL database, no Redis: writes on both reach the clients of both."""
    settings = {
        "SECRET_KEY": SECRET_KEY,
        "WORKERS": "2",
        "DB_POOL_SIZE": "4",
        "DB_MAX_OVERFLOW": "2",
        **BUSY,
    }
    with fresh_database("postgres", tmp_path) as url, ExitStack() as stack:
        servers = machines(stack, tmp_path, [migrated(url, tmp_path)] * 2, **settings)
        tokens = tenants(servers[0])
        urls = [s.url for s in servers]
        listeners, written = run_broadcast(urls, urls, tokens, ORDERS_ACROSS_MACHINES)
    check_every_client(listeners, written)
    record_latency(listeners)


def test_a_client_back_with_since_receives_exactly_what_it_missed(sqlite_service: ServeProcess) -> None:
    """Away while 50 events happen, back with since=<last id>: those 50, in order, then the next live one."""
    tokens = tenants(sqlite_service)
    url = sqlite_service.url

    async def scenario() -> None:
        client = Listener(url, tokens[0], 0)
        first = asyncio.create_task(client.run(expected=2))  # one order created and updated, then it leaves
        await client.subscribed.wait()
        await write_orders([url], {0: tokens[0]}, 1)
        await asyncio.wait_for(first, RUN_TIMEOUT)
        before = client.last_id
        missed = await write_orders([url], {0: tokens[0]}, 25)  # 50 events while away
        back = Listener(url, tokens[0], 0)
        back.last_id = before
        await asyncio.wait_for(back.run(expected=50), RUN_TIMEOUT)
        assert sorted((e["order_id"], e["type"]) for e in back.events) == sorted(
            (order_id, kind) for order_id in missed.orders[0] for kind in ("order.created", "order.updated")
        )
        ids = [e["id"] for e in back.events]
        assert len(ids) == 50
        assert ids == sorted(ids)
        assert ids[0] > (before or 0)
        live = asyncio.create_task(back.run(expected=51))  # resubscribes since its last id
        after = await write_orders([url], {0: tokens[0]}, 1)
        await asyncio.wait_for(live, RUN_TIMEOUT)
        assert back.events[50]["order_id"] == after.orders[0][0]
        assert back.events[50]["type"] == "order.created"

    asyncio.run(scenario())


def test_a_stopping_service_closes_its_sockets_for_a_reconnect(tmp_path: Path) -> None:
    """SIGTERM to `lastro serve`: each open socket is closed with 1012 (restart) or 1001 (going away)."""
    with orders_service("sqlite", tmp_path, WORKERS="2") as server:
        tokens = tenants(server)
        listeners = [Listener(server.url, tokens[n % 2], n % 2) for n in range(4)]

        async def scenario() -> None:
            receiving = [asyncio.create_task(listener.run(expected=1)) for listener in listeners]
            async with asyncio.timeout(RUN_TIMEOUT):
                await asyncio.gather(*(listener.subscribed.wait() for listener in listeners))
                await asyncio.to_thread(server.stop)
                await asyncio.gather(*receiving)

        asyncio.run(scenario())
    assert all(listener.closes and listener.closes[0][1] in (1001, 1012) for listener in listeners)


async def through_an_outage(
    urls: Sequence[str],
    writer_urls: Sequence[str],
    tokens: dict[int, str],
    cut: Callable[[], None],
    restore: Callable[[], None],
) -> tuple[list[Listener], float]:
    """20 resuming clients while orders are written; the backend cut for 1.5 s, then restored. The
    clients, and the Unix time the backend was back."""
    labels = itertools.cycle(tokens)
    listeners = []
    for n in range(CLIENTS):
        label = next(labels)
        listeners.append(Listener(urls[n % len(urls)], tokens[label], label, resume=True))
    stop = asyncio.Event()
    receiving = [asyncio.create_task(listener.run(stop=stop)) for listener in listeners]
    async with asyncio.timeout(RUN_TIMEOUT):
        await asyncio.gather(*(listener.subscribed.wait() for listener in listeners))
        writing = asyncio.create_task(write_orders(writer_urls, tokens, 20, concurrency=2, stop=stop))
        await wait_until(lambda: all(listener.events for listener in listeners))
        await asyncio.to_thread(cut)
        await asyncio.sleep(1.5)  # the outage: the writes meanwhile wait, or are refused (503)
        await asyncio.to_thread(restore)
        back = time.time()
        await wait_until(lambda: all(resumed_after(listener, back) for listener in listeners))
        stop.set()
        await writing
        await asyncio.gather(*receiving)  # a Hang would be raised here
    return listeners, back


def resumed(listeners: Sequence[Listener], back: float, what: str) -> float:
    """The longest a client waited, from the backend being back to its next event; logged."""
    waits = [min(arrival for arrival in listener.arrivals if arrival > back) - back for listener in listeners]
    logger.info(
        "after %s: %d of %d clients saw a gap, %d a close; delivery resumed after %.2f s at most",
        what,
        sum(bool(listener.gaps) for listener in listeners),
        len(listeners),
        sum(bool(listener.closes) for listener in listeners),
        max(waits),
    )
    return max(waits)


@pytest.mark.redis
def test_a_redis_restart_gives_a_gap_and_delivery_resumes(tmp_path: Path) -> None:
    """Redis killed and restarted empty mid-stream: every client is told of the gap, none hangs, and each
    receives again within 5 s of Redis being back."""
    redis_server = PrivateRedis(tmp_path)
    redis_server.start()
    settings = {
        "REDIS_URL": redis_server.url,
        "REDIS_SOCKET_TIMEOUT": "0.5",
        "INSTANCES": "2",
        "WORKERS": "2",
        "SERVICE_NAME": f"lastro-test-{uuid.uuid4().hex[:8]}",
        **BUSY,
    }
    try:
        with ExitStack() as stack:
            servers = sqlite_machines(stack, tmp_path, 2, **settings)
            tokens = tenants(servers[0])
            urls = [s.url for s in servers]
            outage = through_an_outage(urls, urls[:1], tokens, redis_server.kill, redis_server.start)
            listeners, back = asyncio.run(outage)
    finally:
        redis_server.kill()
    for listener in listeners:  # restarted empty, Redis has nothing to replay: each client is told so
        assert listener.gaps
        assert listener.gaps[0][1]["since"] is not None
    assert resumed(listeners, back, "the Redis restart") <= RESUMED_WITHIN


@pytest.mark.postgres
def test_postgresql_cut_off_gives_a_replay_or_a_gap_and_delivery_resumes(tmp_path: Path) -> None:
    """Two machines on one PostgreSQL, the network to it blackholed mid-stream: no client hangs, each gets
    what it missed (each order's versions rising, none twice) or a gap, and receives again within 5 s."""
    proxy = PgProxy()
    proxy.start()
    settings = {
        "SECRET_KEY": SECRET_KEY,
        "WORKERS": "2",
        "DB_POOL_SIZE": "4",
        "DB_MAX_OVERFLOW": "2",
        "DB_CONNECT_TIMEOUT": "2",
        **BUSY,
    }
    try:
        with fresh_database("postgres", tmp_path) as url, ExitStack() as stack:
            migrated(url, tmp_path)  # straight, not through the proxy: the schema is not what is tested
            servers = machines(stack, tmp_path, [proxy.url(url)] * 2, **settings)
            tokens = tenants(servers[0])
            urls = [s.url for s in servers]
            listeners, back = asyncio.run(
                through_an_outage(urls, urls, tokens, proxy.blackhole, proxy.restore)
            )
    finally:
        proxy.restore()
        proxy.stop()
    for listener in listeners:
        seen: dict[int, int] = {}
        for event in listener.events if not listener.gaps else []:
            assert event["version"] > seen.get(event["order_id"], 0), event
            seen[event["order_id"]] = event["version"]
    assert resumed(listeners, back, "PostgreSQL's cut") <= RESUMED_WITHIN


def resumed_after(listener: Listener, moment: float) -> bool:
    return any(arrival > moment for arrival in listener.arrivals)


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll `condition`; the scenario's own `asyncio.timeout` bounds the wait."""
    for _ in itertools.count():
        if condition():
            return
        await asyncio.sleep(0.05)
