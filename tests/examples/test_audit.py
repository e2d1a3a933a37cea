"""`AuditLog` in process, on a real SQLite database: retried until written, each entry once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from examples.orders.audit import AuditEntry, AuditLog, _insert_entries
from examples.orders.changes import OrderChange
from examples.orders.settings import OrdersSettings
from lastro.db.engine import Database
from lastro.db.migrations import upgrade
from lastro.db.transactions import Transactions
from lastro.health import CheckFailed
from tests.support.clock import ManualTime
from tests.support.servers import ORDERS_MIGRATIONS

pytestmark = pytest.mark.anyio


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'audit.db'}")
    yield database
    database.dispose()


def change(order_id: int, version: int = 1) -> OrderChange:
    at = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
    return OrderChange("order.updated", 1, order_id, version, at, user_id=7)


def rows(connection: Connection) -> list[tuple[int, int, int | None, str]]:
    statement = text("SELECT order_id, version, user_id, at FROM order_audit ORDER BY order_id, version")
    return [tuple(row) for row in connection.execute(statement)]  # type: ignore[misc]


async def test_a_batch_written_twice_inserts_each_entry_once(database: Database) -> None:
    """A batch retried after its COMMIT applied (the reply lost) leaves one row per entry."""
    upgrade(database, ORDERS_MIGRATIONS)
    transactions = Transactions(database)
    entries = [AuditEntry.of(change(order_id)) for order_id in (1, 2)]
    try:
        await transactions.write(_insert_entries, entries)
        await transactions.write(_insert_entries, entries)
        assert len(await transactions.read(rows)) == 2
    finally:
        transactions.close()


async def test_entries_wait_while_the_table_is_missing_then_are_all_written(database: Database) -> None:
    """A failing write is retried with backoff and shown on `/health`; once it succeeds nothing is missing."""
    upgrade(database, ORDERS_MIGRATIONS, "0003")  # no order_audit yet: every write fails
    transactions = Transactions(database)
    time = ManualTime()
    settings = OrdersSettings(AUDIT_MAX_WAIT=0, AUDIT_BATCH_SIZE=10, AUDIT_MAX_PENDING=10)
    audit = AuditLog(transactions, settings, clock=time.clock, sleep=time.sleep)
    audit.start()
    try:
        for order_id in (1, 2, 3):
            await audit.record(change(order_id))
        await until(lambda: audit.batches.failures >= 1)
        with pytest.raises(CheckFailed, match="audit entries are not being written"):
            await audit.check()
        upgrade(database, ORDERS_MIGRATIONS)
        await time.advance(5.0)  # past the backoff: the batch is written again
        await until(lambda: audit.batches.pending == 0)
        assert (await audit.check())["flushed"] == 3
    finally:
        await audit.close()
        transactions.close()
    with database.engine.connect() as connection:
        assert rows(connection) == [(order_id, 1, 7, "2026-12-05 06:00:00.000000") for order_id in (1, 2, 3)]


async def until(condition: Callable[[], bool]) -> None:
    """Poll for up to 15 s without blocking the loop: SQLite writes may run on it."""
    for _ in range(1500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition did not hold within 15 s")
