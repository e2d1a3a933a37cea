"""The audit log of order changes: one `order_audit` row per committed change, written in batches.

A step of `Changes` (registered in the lifespan) queues an entry for each change once its unit of work has
committed (`lastro.on_commit`); a `lastro.BatchProcessor` writes the entries `AUDIT_BATCH_SIZE` at a time,
or `AUDIT_MAX_WAIT` seconds after the oldest, in one transaction per batch. The request does not wait for
the write: it waits only while `AUDIT_MAX_PENDING` entries are queued (the database is slow or down), so
the log slows the writes down rather than drop an entry. A batch that fails is written again, in order,
until it succeeds; each entry's id is made here, so a batch written twice (a lost COMMIT reply) inserts
each entry once.

At shutdown the lifespan closes the log before lastro closes the database: every entry queued is written
before the worker exits (a SIGTERM loses nothing; a SIGKILL loses what was queued).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, desc, exists, select

import lastro
from examples.orders.changes import OrderChange
from examples.orders.errors import NotFound
from examples.orders.schema import order_audit, orders
from examples.orders.settings import OrdersSettings
from examples.orders.storage import insert_or_nothing, storable_id
from lastro.health import CheckFailed

__all__ = ["AuditEntry", "AuditLog", "order_audit_entries"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    tenant_id: int
    order_id: int
    type: str
    version: int
    user_id: int | None
    at: datetime  # naive UTC, as every time is stored

    @classmethod
    def of(cls, change: OrderChange) -> AuditEntry:
        at = change.at.astimezone(UTC).replace(tzinfo=None) if change.at.tzinfo else change.at
        return cls(
            str(lastro.uuid4()),
            change.tenant_id,
            change.order_id,
            change.type,
            change.version,
            change.user_id,
            at,
        )


class AuditLog:
    """Queues an entry per change (`record`, a `Changes` step) and writes them in batches."""

    def __init__(
        self,
        transactions: lastro.Transactions,
        settings: OrdersSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._transactions = transactions
        self._close_within = settings.GRACEFUL_TIMEOUT
        self.batches: lastro.BatchProcessor[AuditEntry] = lastro.BatchProcessor(
            self._write,
            batch_size=settings.AUDIT_BATCH_SIZE,
            max_wait_ms=settings.AUDIT_MAX_WAIT * 1000,
            max_pending=settings.AUDIT_MAX_PENDING,
            name="order audit",
            clock=clock,
            sleep=sleep,
        )

    def start(self) -> None:
        self.batches.start()

    def step(self, connection: Connection, change: OrderChange) -> None:
        """The `Changes` step: the entry is queued once the change has committed."""
        lastro.on_commit(connection, partial(self.record, change))

    async def record(self, change: OrderChange) -> None:
        # No bound on the wait: the change has committed, and refusing would lose its entry.
        await self.batches.add(AuditEntry.of(change))

    async def close(self) -> None:
        """Write every queued entry; give up (and log how many) after GRACEFUL_TIMEOUT seconds."""
        await self.batches.close(within=self._close_within)

    async def check(self) -> dict[str, Any]:
        """`/health`'s `order_audit`: an error while a batch fails to be written (it is kept and retried)."""
        statistics = self.batches.statistics()
        if statistics["retrying"]:
            raise CheckFailed(
                f"audit entries are not being written: {statistics['last_error']}", **statistics
            )
        return statistics

    async def _write(self, entries: list[AuditEntry]) -> None:
        await self._transactions.write(_insert_entries, entries)


def _insert_entries(connection: Connection, entries: list[AuditEntry]) -> None:
    rows = [
        {
            "id": entry.id,
            "tenant_id": entry.tenant_id,
            "order_id": entry.order_id,
            "type": entry.type,
            "version": entry.version,
            "user_id": entry.user_id,
            "at": entry.at,
        }
        for entry in entries
    ]
    # A batch written again after a lost COMMIT reply finds its entries there: each is inserted once.
    connection.execute(insert_or_nothing(order_audit, connection.dialect.name), rows)


def order_audit_entries(
    connection: Connection, tenant_id: int, order_id: int, limit: int
) -> list[dict[str, Any]]:
    """The order's newest `limit` entries, newest first; NotFound for an order the tenant does not have.

    A deleted order's log goes with it, as its images do: like `GET /api/orders/{id}`, 404 once deleted.
    """
    live = exists().where(
        orders.c.id == order_id, orders.c.tenant_id == tenant_id, orders.c.deleted_at.is_(None)
    )
    if not storable_id(order_id) or not connection.execute(select(live)).scalar_one():
        raise NotFound(f"order {order_id} not found")
    rows = connection.execute(
        select(
            order_audit.c.id,
            order_audit.c.type,
            order_audit.c.version,
            order_audit.c.user_id,
            order_audit.c.at,
        )
        .where(order_audit.c.tenant_id == tenant_id, order_audit.c.order_id == order_id)
        .order_by(desc(order_audit.c.at), desc(order_audit.c.version))
        .limit(limit)
    ).all()
    return [
        {
            "id": entry_id,
            "type": kind,
            "version": version,
            "user_id": user_id,
            "at": at.replace(tzinfo=UTC),
        }
        for entry_id, kind, version, user_id, at in rows
    ]
