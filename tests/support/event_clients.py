"""Clients of the orders service's event socket, for the end-to-end tests and `benchmarks/broadcast.py`.

`Listener` is one WebSocket client of one tenant: it records each event with the time it arrived, never
waits on a frame longer than its idle timeout (`Hang`), and, told to, resubscribes after a gap or a close
(`since` its last id; without `since` after a gap, as a client that reloaded would). `write_orders` is the
other client: it creates and updates orders of several tenants. `delivery_latencies` turns what the
listeners saw into seconds from each event's `at` to its arrival.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import websockets

__all__ = ["Hang", "Listener", "Written", "broadcast", "delivery_latencies", "percentile", "write_orders"]

ORDER = {"customer": "ACME", "items": [{"sku": "A-1", "name": "Anvil", "quantity": 1, "unit_price": 2.5}]}


class Hang(AssertionError):
    """A socket sent nothing for longer than the listener's idle timeout while events were expected."""


@dataclass
class Listener:
    url: str  # the service's base URL, http://…
    token: str
    tenant: int
    resume: bool = False  # reconnect after a gap or a close instead of stopping
    idle_timeout: float = 10.0
    events: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.time() of each event's arrival
    gaps: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    closes: list[tuple[float, int | None]] = field(default_factory=list)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    last_id: int | None = None

    def socket_url(self, since: int | None) -> str:
        base = f"{self.url.replace('http', 'ws', 1)}/api/orders/events?token={self.token}"
        return base if since is None else f"{base}&since={since}"

    async def run(self, expected: int | None = None, stop: asyncio.Event | None = None) -> None:
        """Receive until `expected` events arrived or `stop` is set; `Hang` when a socket goes silent."""
        since = self.last_id
        while not self._done(expected, stop):
            try:
                url = self.socket_url(since)
                async with websockets.connect(url, open_timeout=self.idle_timeout) as socket:
                    self.subscribed.set()
                    since = await self._read(socket, since, expected, stop)
            except websockets.ConnectionClosed as closed:
                self.closes.append((time.time(), closed.rcvd.code if closed.rcvd else None))
                since = self.last_id
            except (OSError, websockets.InvalidStatus, websockets.InvalidHandshake):
                await asyncio.sleep(0.2)  # the service itself is away: try again
            if not self.resume:
                return

    async def _read(
        self,
        socket: websockets.ClientConnection,
        since: int | None,
        expected: int | None,
        stop: asyncio.Event | None,
    ) -> int | None:
        """Read frames until done or a gap; the `since` to resubscribe with."""
        received = 0
        while not self._done(expected, stop):
            try:
                raw = await asyncio.wait_for(socket.recv(), self.idle_timeout)
            except TimeoutError:
                if stop is not None and stop.is_set():
                    return self.last_id
                raise Hang(f"tenant {self.tenant}: nothing for {self.idle_timeout} s") from None
            message = json.loads(raw)
            if message["type"] == "gap":
                self.gaps.append((time.time(), message))
                # Straight after subscribing `since`: that cannot be replayed, so reload and start afresh.
                return None if since is not None and not received else self.last_id
            received += 1
            self.events.append(message)
            self.arrivals.append(time.time())
            self.last_id = message["id"]
        return self.last_id

    def _done(self, expected: int | None, stop: asyncio.Event | None) -> bool:
        return (expected is not None and len(self.events) >= expected) or (stop is not None and stop.is_set())


@dataclass
class Written:
    """What the writing client did: each tenant's order ids, and the writes refused (a 503 in an outage)."""

    orders: dict[int, list[int]] = field(default_factory=dict)
    refused: int = 0


async def write_orders(
    urls: Sequence[str],
    tokens: dict[int, str],
    count: int,
    *,
    concurrency: int = 8,
    stop: asyncio.Event | None = None,
) -> Written:
    """Create `count` orders spread over the tenants, and update each once; writes round-robin over `urls`.

    With `stop`, goes on (count is then per round) until it is set; refused writes are counted, not raised.
    """
    written = Written({tenant: [] for tenant in tokens})
    tenants = itertools.cycle(tokens)
    targets = itertools.cycle(urls)
    jobs: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(tenant: int, url: str) -> None:
            headers = {"Authorization": f"Bearer {tokens[tenant]}"}
            created = await client.post(f"{url}/api/orders", json=ORDER, headers=headers)
            if created.status_code != 201:
                written.refused += 1
                return
            order_id = created.json()["id"]
            written.orders[tenant].append(order_id)
            patch = {"notes": "packed"}
            updated = await client.patch(
                f"{url}/api/orders/{order_id}", json=patch, headers=headers | {"If-Match": "*"}
            )
            if updated.status_code != 200:
                written.refused += 1

        async def worker() -> None:
            while True:
                try:
                    tenant, url = jobs.get_nowait()
                except asyncio.QueueEmpty:
                    if stop is None or stop.is_set():
                        return
                    for _ in range(count):
                        jobs.put_nowait((next(tenants), next(targets)))
                    continue
                try:
                    await one(tenant, url)
                except httpx.TransportError:
                    written.refused += 1

        for _ in range(count):
            jobs.put_nowait((next(tenants), next(targets)))
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return written


async def broadcast(
    client_urls: Sequence[str],
    writer_urls: Sequence[str],
    tokens: dict[int, str],
    *,
    clients: int,
    orders: int,
    deadline: float,
) -> tuple[list[Listener], Written]:
    """`clients` listeners spread over the services and tenants; once all are subscribed, `orders` orders
    are created and updated, and each listener waits for the `orders` events of its tenant."""
    labels = itertools.cycle(tokens)
    listeners = []
    for n in range(clients):
        label = next(labels)
        listeners.append(Listener(client_urls[n % len(client_urls)], tokens[label], label))
    expected = 2 * orders // len(tokens)
    receiving = [asyncio.create_task(listener.run(expected=expected)) for listener in listeners]
    try:
        async with asyncio.timeout(deadline):  # seconds for the whole round
            await asyncio.gather(*(listener.subscribed.wait() for listener in listeners))
            written = await write_orders(writer_urls, tokens, orders)
            await asyncio.gather(*receiving)
    finally:
        for task in receiving:
            task.cancel()
    return listeners, written


def delivery_latencies(listeners: Sequence[Listener]) -> list[float]:
    """Seconds from each event's `at` (the write's time) to its arrival at each listener."""
    return [
        arrival - datetime.fromisoformat(event["at"]).timestamp()
        for listener in listeners
        for event, arrival in zip(listener.events, listener.arrivals, strict=True)
    ]


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
