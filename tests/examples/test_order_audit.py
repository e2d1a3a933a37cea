"""The orders audit log under `lastro serve`: an entry per committed change, none lost at SIGTERM.

`make test` runs bursts of 500 writes; `make faults` (`LASTRO_FAULTS=1`) runs 5,000.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.examples.conftest import (
    BURST_BACKENDS,
    JSON_ORDER,
    SECRET_KEY,
    Api,
    fresh_database,
    is_problem,
    serve_orders,
)
from tests.support.faults import faults_only
from tests.support.servers import ServeProcess, wait_for

BURST_ORDERS = 4000 if os.environ.get("LASTRO_FAULTS") == "1" else 400
WRITES = BURST_ORDERS * 5 // 4  # every 4th order is also patched
STOP_AT = BURST_ORDERS * 3 // 4  # creates acknowledged when SIGTERM is sent mid-burst
CONCURRENCY = 32


def rows_of(url: str, query: str) -> list[tuple[Any, ...]]:
    """The rows `query` reads straight from the service's database, SQLite or PostgreSQL."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            return connection.execute(query).fetchall()
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        return connection.execute(query).fetchall()


def audit_rows(url: str) -> set[tuple[int, str, int]]:
    """(order_id, type, version) of every row in `order_audit`."""
    rows = rows_of(url, "SELECT order_id, type, version FROM order_audit")
    return {(order_id, kind, version) for order_id, kind, version in rows}


def count_rows(url: str) -> int:
    return int(rows_of(url, "SELECT count(*) FROM order_audit")[0][0])


async def burst(
    base_url: str, token: str, on_created: Callable[[int], None] = lambda count: None
) -> tuple[set[tuple[int, str, int]], list[str]]:
    """BURST_ORDERS creates and a PATCH of every 4th, 32 at a time: the changes acknowledged, and every
    other answer.
    `on_created` is told how many creates were acknowledged so far, after each."""
    acknowledged: set[tuple[int, str, int]] = set()
    refused: list[str] = []
    gate = asyncio.Semaphore(CONCURRENCY)
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120, limits=limits) as client:

        async def write(number: int) -> None:
            try:
                await changed(number)
            except httpx.TransportError as error:  # the service stopped: the write was not acknowledged
                refused.append(repr(error))

        async def changed(number: int) -> None:
            async with gate:
                created = await client.post("/api/orders", json={**JSON_ORDER, "customer": f"c{number}"})
                if created.status_code != 201:
                    refused.append(f"{created.status_code} {created.text}")
                    return
                order = created.json()
                acknowledged.add((order["id"], "order.created", order["version"]))
                on_created(sum(kind == "order.created" for _, kind, _ in acknowledged))
                if number % 4:
                    return
                patched = await client.patch(
                    f"/api/orders/{order['id']}", json={"notes": f"n{number}"}, headers={"If-Match": "*"}
                )
                if patched.status_code != 200:
                    refused.append(f"{patched.status_code} {patched.text}")
                    return
                acknowledged.add((order["id"], "order.updated", patched.json()["version"]))

        await asyncio.gather(*(write(number) for number in range(BURST_ORDERS)))
    return acknowledged, refused


@faults_only("the SIGTERM during a burst (below) covers the queue written at exit")
@pytest.mark.parametrize("database", BURST_BACKENDS)
def test_a_burst_of_writes_then_sigterm_leaves_an_entry_per_write(database: str, tmp_path: Path) -> None:
    """Entries still queued when SIGTERM arrives are written before the workers exit: one per acknowledged
    write, none lost, none doubled."""
    # Batches that neither fill nor age during the burst: what is written is written at shutdown.
    audit = {"AUDIT_BATCH_SIZE": "10000", "AUDIT_MAX_PENDING": "10000", "AUDIT_MAX_WAIT": "60"}
    with fresh_database(database, tmp_path) as url:
        options = {"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "WORKERS": "2", "GRACEFUL_TIMEOUT": "30"}
        if database == "postgres":
            options |= {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2"}
        with serve_orders(tmp_path, **options, **audit) as server:
            with Api.login(server.url, "admin", "admin") as admin:
                token = admin.token
            assert token is not None
            acknowledged, refused = asyncio.run(burst(server.url, token))
            before = count_rows(url)
            exit_code = server.stop(timeout=60)
        assert refused == []
        assert len(acknowledged) == WRITES
        assert before < WRITES  # the entries were still queued when SIGTERM came (unless the burst took 60 s)
        assert exit_code == 0, server.log_tail()
        assert count_rows(url) == WRITES
        assert audit_rows(url) == acknowledged


def committed_changes(url: str) -> set[tuple[int, str, int]]:
    """The changes the orders table shows were committed: each order created, and patched if at version 2."""
    orders = rows_of(url, "SELECT id, version FROM orders")
    created = {(order_id, "order.created", 1) for order_id, _ in orders}
    return created | {(order_id, "order.updated", 2) for order_id, version in orders if version == 2}


@pytest.mark.posix
@pytest.mark.parametrize("database", BURST_BACKENDS)
def test_sigterm_during_a_burst_leaves_an_entry_per_committed_change(database: str, tmp_path: Path) -> None:
    """SIGTERM with writes in flight: every committed change has exactly one entry, acknowledged or not."""
    audit = {"AUDIT_BATCH_SIZE": "10000", "AUDIT_MAX_PENDING": "10000", "AUDIT_MAX_WAIT": "60"}
    with fresh_database(database, tmp_path) as url:
        options = {"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "WORKERS": "2", "GRACEFUL_TIMEOUT": "30"}
        if database == "postgres":
            options |= {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2"}
        with serve_orders(tmp_path, **options, **audit) as server:
            with Api.login(server.url, "admin", "admin") as admin:
                token = admin.token
            assert token is not None

            def stop_midway(created: int) -> None:
                if created == STOP_AT:
                    server.signal(signal.SIGTERM)

            acknowledged, _ = asyncio.run(burst(server.url, token, stop_midway))
            exit_code = server.stop(timeout=60)
        assert exit_code == 0, server.log_tail()
        entries = audit_rows(url)
        assert count_rows(url) == len(entries)  # no change recorded twice
        assert entries == committed_changes(url)
        assert acknowledged <= entries
        assert STOP_AT <= len(acknowledged) < WRITES


def test_a_patch_shows_in_the_audit_within_the_flush_delay(tenant: Api) -> None:
    """After a create and a PATCH, GET …/audit lists both, newest first, with who made them."""
    order = tenant.create().json()
    patched = tenant.patch(f"/api/orders/{order['id']}", json={"notes": "gift"}, headers={"If-Match": "*"})
    assert patched.status_code == 200, patched.text

    def both() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = tenant.get(f"/api/orders/{order['id']}/audit").json()["items"]
        return items if len(items) == 2 else None

    items = wait_for(both, timeout=15)
    assert [(item["type"], item["version"]) for item in items] == [("order.updated", 2), ("order.created", 1)]
    assert items[0]["user_id"] == items[1]["user_id"] is not None
    assert items[0]["at"].endswith("Z")


def test_a_delete_is_audited_and_the_log_goes_with_the_order(
    tenant: Api, orders_server: ServeProcess
) -> None:
    """A deletion is written to the log, and the deleted order's log answers 404 like the order itself."""
    order = tenant.create().json()
    assert tenant.delete(f"/api/orders/{order['id']}").status_code == 204
    assert is_problem(tenant.get(f"/api/orders/{order['id']}/audit"), 404)

    def deletion() -> bool:
        entries = audit_rows(orders_server.env["DATABASE_URL"])
        return any(entry[:2] == (order["id"], "order.deleted") for entry in entries)

    wait_for(deletion, timeout=15)


def test_another_tenants_order_has_no_audit(tenant: Api, admin: Api) -> None:
    """The log of an order of another tenant answers 404, like the order itself."""
    order = tenant.create().json()
    assert is_problem(admin.get(f"/api/orders/{order['id']}/audit"), 404)
    assert is_problem(admin.get("/api/orders/99999999999/audit"), 404)


def test_the_audit_limit_is_bounded(tenant: Api) -> None:
    """`limit` takes 1 to MAX_PAGE_SIZE; outside that is a 422 problem, and within it bounds the items."""
    order = tenant.create().json()
    for notes in ("a", "b", "c"):
        tenant.patch(f"/api/orders/{order['id']}", json={"notes": notes}, headers={"If-Match": "*"})
    assert is_problem(tenant.get(f"/api/orders/{order['id']}/audit", params={"limit": 0}), 422)
    assert is_problem(tenant.get(f"/api/orders/{order['id']}/audit", params={"limit": 100_000}), 422)

    def four() -> bool:
        return len(tenant.get(f"/api/orders/{order['id']}/audit").json()["items"]) == 4

    wait_for(four, timeout=15)
    page = tenant.get(f"/api/orders/{order['id']}/audit", params={"limit": 2}).json()["items"]
    assert [item["version"] for item in page] == [4, 3]


def test_health_shows_the_audit_queue(admin: Api) -> None:
    """`/health` has a non-critical `order_audit` check with the queue's figures."""
    check = admin.get("/health").json()["checks"]["order_audit"]
    assert check["status"] == "ok"
    assert {"pending", "flushed", "batches", "failures", "retrying", "last_error"} <= set(check)
