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
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from benchmarks.servers import load_average, machine
from tests.examples.conftest import SECRET_KEY, Api, fresh_database, orders_service, serve_orders
from tests.support.event_clients import broadcast, delivery_latencies, percentile
from tests.support.servers import ServeProcess

logger = logging.getLogger("benchmarks.broadcast")

SYSTEMS = ("sqlite", "redis", "postgres")
REDIS_URL = "redis://127.0.0.1:6379/0"
BUSY = {"RATE_LIMIT_DEFAULT": "1000000/minute", "MAX_LOOP_LAG": "0"}
DEADLINE = 300.0


@contextmanager
def system(name: str, directory: Path) -> Iterator[tuple[list[ServeProcess], list[str]]]:
    """The system's services, and the ones the writer sends to (those that share the data)."""
    with ExitStack() as stack:
        if name == "sqlite":
            server = stack.enter_context(orders_service("sqlite", directory, WORKERS="4", **BUSY))
            yield [server], [server.url]
            return
        machines = [directory / f"machine{n}" for n in range(2)]
        for path in machines:
            path.mkdir()
        if name == "redis":
            settings = {
                "REDIS_URL": REDIS_URL,
                "INSTANCES": "2",
                "WORKERS": "2",
                "SERVICE_NAME": f"lastro-bench-{uuid.uuid4().hex[:8]}",
                **BUSY,
            }
            servers = [stack.enter_context(orders_service("sqlite", path, **settings)) for path in machines]
            yield servers, [servers[0].url]  # a SQLite file each: the tenants exist on the first
            return
        url = stack.enter_context(fresh_database("postgres", directory))
        settings = {
            "DATABASE_URL": url,
            "SECRET_KEY": SECRET_KEY,
            "WORKERS": "2",
            "DB_POOL_SIZE": "4",
            "DB_MAX_OVERFLOW": "2",
            **BUSY,
        }
        servers = [stack.enter_context(serve_orders(path, **settings)) for path in machines]
        yield servers, [server.url for server in servers]


def tenants(server: ServeProcess) -> dict[int, str]:
    with Api.login(server.url, "admin", "admin") as admin:
        users = [admin.new_tenant(f"bench{label}") for label in range(2)]
    for user in users:
        user.close()
    return {label: str(user.token) for label, user in enumerate(users)}


def measure(name: str, rounds: int, clients: int, orders: int) -> dict[str, Any]:
    per_round: list[dict[str, Any]] = []
    every: list[float] = []
    with ExitStack() as stack:
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-broadcast-{name}-"))
        servers, writers = stack.enter_context(system(name, Path(directory)))
        for number in range(1, rounds + 1):
            tokens = tenants(servers[0])
            started = time.perf_counter()
            listeners, written = asyncio.run(
                broadcast(
                    [server.url for server in servers],
                    writers,
                    tokens,
                    clients=clients,
                    orders=orders,
                    deadline=DEADLINE,
                )
            )
            seconds = time.perf_counter() - started
            latencies = delivery_latencies(listeners)
            every += latencies
            figures = {
                "round": number,
                "deliveries": len(latencies),
                "refused_writes": written.refused,
                "seconds": round(seconds, 2),
                "events_per_second": round(2 * orders / seconds, 1),
                "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
                "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
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
