"""How long an order event takes from its write to the WebSocket clients, on each broadcast backend.

    .venv/bin/python -m benchmarks.broadcast --json benchmarks/broadcast.json
    .venv/bin/python -m benchmarks.broadcast --smoke     # one small round of each: about 30 seconds

Three systems of the orders service under `lastro serve`, on loopback:

- SQLite: one machine, 4 workers; the events go through the file's `lastro_events` table;
- Redis: two machines of 2 workers, a SQLite file each, sharing the Redis on 127.0.0.1:6379;
- PostgreSQL: two machines of 2 workers sharing only a fresh database on 127.0.0.1:5432 (LISTEN/NOTIFY).

A round: 20 WebSocket clients in 2 tenants (spread over the machines) subscribe; another client creates
and updates 500 orders (8 requests at a time, round-robin over the machines that share the data); each
client waits for the 500 events of its tenant. The latency of one delivery is the client's clock at the
frame's arrival minus the event's `at` (the write's time, taken before its commit), so it holds the
commit, the publication, the backend's hop, the worker's fan-out and the frame. Everything shares the same
cores: the clients, the writer and the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

from benchmarks.harness import BIN, Server, free_port
from benchmarks.orders.systems import MIGRATIONS, orders_env, postgres_database
from benchmarks.servers import load_average, machine
from lastro.db import migrations
from lastro.db.engine import Database

logger = logging.getLogger("benchmarks.broadcast")

SYSTEMS = ("sqlite", "redis", "postgres")
REDIS_URL = "redis://127.0.0.1:6379/0"
DEADLINE = 300.0  # seconds for one round
IDLE = 30.0  # seconds a client may go without a frame before the round fails
ORDER = {"customer": "ACME", "items": [{"sku": "A-1", "name": "Anvil", "quantity": 1, "unit_price": 2.5}]}
POOL = {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2"}  # two machines of 2 workers on one PostgreSQL


@dataclass
class Client:
    """One WebSocket client of one tenant: each event, and the time it arrived."""

    url: str
    token: str
    tenant: int
    events: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, expected: int) -> None:
        url = f"{self.url.replace('http', 'ws', 1)}/api/orders/events?token={self.token}"
        async with websockets.connect(url, max_queue=None) as socket:
            self.subscribed.set()  # the handshake completes once the socket is subscribed
            while len(self.events) < expected:
                message = json.loads(await asyncio.wait_for(socket.recv(), IDLE))
                arrival = time.time()
                if message["type"] == "gap":
                    raise RuntimeError(f"a gap: {message}")
                self.events.append(message)
                self.arrivals.append(arrival)


async def write_orders(urls: Sequence[str], tokens: dict[int, str], count: int) -> int:
    """Create `count` orders over the tenants, 8 at a time, and update each once; the writes refused."""
    refused = 0
    jobs = list(zip(itertools.islice(itertools.cycle(tokens), count), itertools.cycle(urls), strict=False))
    async with httpx.AsyncClient(timeout=30) as client:

        async def writer() -> None:
            nonlocal refused
            while jobs:
                tenant, url = jobs.pop()
                headers = {"Authorization": f"Bearer {tokens[tenant]}"}
                created = await client.post(f"{url}/api/orders", json=ORDER, headers=headers)
                if created.status_code != 201:
                    refused += 1
                    continue
                updated = await client.patch(
                    f"{url}/api/orders/{created.json()['id']}",
                    json={"notes": "packed"},
                    headers=headers | {"If-Match": "*"},
                )
                refused += updated.status_code != 200

        await asyncio.gather(*(writer() for _ in range(8)))
    return refused


async def one_round(
    servers: Sequence[str], writers: Sequence[str], tokens: dict[int, str], clients: int, orders: int
) -> tuple[list[Client], int]:
    labels = itertools.cycle(tokens)
    listeners = []
    for n in range(clients):
        label = next(labels)
        listeners.append(Client(servers[n % len(servers)], tokens[label], label))
    receiving = [asyncio.create_task(listener.run(2 * orders // len(tokens))) for listener in listeners]
    async with asyncio.timeout(DEADLINE):
        await asyncio.gather(*(listener.subscribed.wait() for listener in listeners))
        refused = await write_orders(writers, tokens, orders)
        await asyncio.gather(*receiving)
    return listeners, refused


def latencies(listeners: Sequence[Client]) -> list[float]:
    """Seconds from each event's `at` (the write's time) to its arrival at each client."""
    return [
        arrival - datetime.fromisoformat(event["at"]).timestamp()
        for listener in listeners
        for event, arrival in zip(listener.events, listener.arrivals, strict=True)
    ]


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def serve(directory: Path, database_url: str, workers: int, **extra: str) -> Server:
    """The orders service under `lastro serve` on a free port: LOG_LEVEL=info, its own images directory."""
    directory.mkdir(exist_ok=True)
    port = free_port()
    env = orders_env(directory, port, database_url, workers) | {"MAX_LOOP_LAG": "0", **extra}
    argv = [str(BIN / "lastro"), "serve", "examples.orders.app:create_app", "--factory"]
    return Server(argv, port, "/health/ready", env, directory / "serve.log")


def migrate(url: str) -> None:
    database = Database(url)
    try:
        migrations.upgrade(database, MIGRATIONS)
    finally:
        database.dispose()


@contextmanager
def system(name: str, directory: Path) -> Iterator[tuple[list[Server], list[str]]]:
    """The system's services, and the URLs the writer sends to (the services that share the data)."""
    secret = {"SECRET_KEY": secrets.token_urlsafe(48)}  # the same on every machine: one login serves all
    with ExitStack() as stack:
        if name == "sqlite":
            url = f"sqlite:///{directory / 'orders.db'}"
            migrate(url)
            server = stack.enter_context(serve(directory, url, 4, **secret))
            yield [server], [server.url]
            return
        if name == "redis":
            shared = {
                "REDIS_URL": REDIS_URL,
                "INSTANCES": "2",
                "SERVICE_NAME": f"bench-{uuid.uuid4().hex[:8]}",
            }
            servers = []
            for n in range(2):
                url = f"sqlite:///{directory / f'orders{n}.db'}"
                migrate(url)
                servers.append(stack.enter_context(serve(directory / f"m{n}", url, 2, **secret, **shared)))
            yield servers, [servers[0].url]  # a SQLite file each: the tenants exist on the first
            return
        url = stack.enter_context(postgres_database())
        migrate(url)
        servers = [
            stack.enter_context(serve(directory / f"m{n}", url, 2, **secret, **POOL)) for n in range(2)
        ]
        yield servers, [server.url for server in servers]


def tenants(url: str) -> dict[int, str]:
    """Two new tenants with one user each (by the development administrator, admin/admin): their tokens."""
    tokens = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        form = {"username": "admin", "password": "admin"}
        admin = {
            "Authorization": f"Bearer {client.post('/api/auth/token', data=form).json()['access_token']}"
        }
        for label in range(2):
            name = f"bench{label}-{uuid.uuid4().hex[:8]}"
            tenant = client.post("/api/admin/tenants", json={"name": name}, headers=admin).json()["id"]
            password = secrets.token_urlsafe(12)
            user = {"username": name, "password": password, "tenant_id": tenant}
            client.post("/api/admin/users", json=user, headers=admin).raise_for_status()
            login = {"username": name, "password": password}
            tokens[label] = client.post("/api/auth/token", data=login).json()["access_token"]
    return tokens


def measure(name: str, rounds: int, clients: int, orders: int) -> dict[str, Any]:
    per_round: list[dict[str, Any]] = []
    every: list[float] = []
    with ExitStack() as stack:
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-broadcast-{name}-"))
        servers, writers = stack.enter_context(system(name, Path(directory)))
        for number in range(1, rounds + 1):
            tokens = tenants(servers[0].url)
            started = time.perf_counter()
            urls = [server.url for server in servers]
            listeners, refused = asyncio.run(one_round(urls, writers, tokens, clients, orders))
            seconds = time.perf_counter() - started
            measured = latencies(listeners)
            every += measured
            figures = {
                "round": number,
                "deliveries": len(measured),
                "refused_writes": refused,
                "seconds": round(seconds, 2),
                "events_per_second": round(2 * orders / seconds, 1),
                "p50_ms": round(percentile(measured, 0.5) * 1000, 1),
                "p99_ms": round(percentile(measured, 0.99) * 1000, 1),
            }
            logger.info("%s %s", name, figures)
            per_round.append(figures)
    return {
        "system": name,
        "rounds": per_round,
        "deliveries": len(every),
        "p50_ms": round(percentile(every, 0.5) * 1000, 1),
        "p99_ms": round(percentile(every, 0.99) * 1000, 1),
        "median_events_per_second": statistics.median(r["events_per_second"] for r in per_round),
    }


LABELS = {
    "sqlite": "SQLite, 1 machine of 4 workers",
    "redis": "Redis, 2 machines of 2 workers",
    "postgres": "PostgreSQL, 2 machines of 2 workers",
}


def report(results: dict[str, Any]) -> str:
    info = results["machine"]
    lines = [
        f"machine: {info['cores']} cores {info['cpu']}, {info['ram']}, {info['platform']}",
        f"Python {info['python']}; load average {results['load_before']} before, "
        f"{results['load_after']} after",
        f"{results['clients']} clients in 2 tenants, {results['orders']} orders created and updated a round, "
        f"{results['rounds']} rounds",
        "",
        "| system | deliveries | p50 ms | p99 ms | p50 / p99 ms by round | events/s written (median) |",
        "|---|---|---|---|---|---|",
    ]
    for result in results["systems"]:
        by_round = ", ".join(f"{r['p50_ms']:.0f} / {r['p99_ms']:.0f}" for r in result["rounds"])
        lines.append(
            f"| {LABELS[result['system']]} | {result['deliveries']:,} | {result['p50_ms']:.1f} | "
            f"{result['p99_ms']:.1f} | {by_round} | {result['median_events_per_second']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--smoke", action="store_true", help="one round of 4 clients and 20 orders each")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    options = parser.parse_args(argv)
    if options.smoke:
        options.rounds, options.clients, options.orders = 1, 4, 20
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    results: dict[str, Any] = {
        "machine": machine(),
        "load_before": load_average(),
        "rounds": options.rounds,
        "clients": options.clients,
        "orders": options.orders,
    }
    results["systems"] = [
        measure(name, options.rounds, options.clients, options.orders) for name in options.systems
    ]
    results["load_after"] = load_average()
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(report(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
