"""The orders service's cleanup, one periodic job (`orders-cleanup`) run once per CLEANUP_INTERVAL_SECONDS
across every worker and machine (`lastro.Jobs`):

- orders soft-deleted more than PURGE_AFTER_DAYS ago go, with their images' rows, then their files;
- image files that no row refers to (a crash between the file and its row, or between the row's removal
  and the file's) go once they are ORPHAN_GRACE_SECONDS old, so an upload in flight is never taken;
- Idempotency-Keys older than IDEMPOTENCY_WINDOW are forgotten.

Each step is idempotent, so a run cut short (a shutdown, a crash) is finished by the next one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select

import lastro
from examples.orders.idempotency import purge_idempotency_keys
from examples.orders.schema import order_images, orders
from examples.orders.settings import OrdersSettings
from examples.orders.storage import now

__all__ = ["JOB_NAME", "Cleaned", "cleanup", "purge_orders", "referenced"]

JOB_NAME = "orders-cleanup"
_BATCH = 500

logger = lastro.get_logger("orders.cleanup")


@dataclass(frozen=True)
class Cleaned:
    orders: int
    orphan_files: int
    idempotency_keys: int


def purge_orders(
    connection: Connection, deleted_before: datetime, limit: int = _BATCH
) -> tuple[int, list[str]]:
    """Remove up to `limit` orders soft-deleted before the given time, with their images' rows.

    Returns how many orders went and the storage names of their images, whose files the caller removes
    once this transaction has committed.
    """
    doomed = select(orders.c.id).where(orders.c.deleted_at < deleted_before).limit(limit)
    order_ids = list(connection.execute(doomed).scalars())
    if not order_ids:
        return 0, []
    names = connection.execute(
        delete(order_images)
        .where(order_images.c.order_id.in_(order_ids))
        .returning(order_images.c.storage_name)
    ).scalars()
    storage_names = list(names)
    purged = connection.execute(delete(orders).where(orders.c.id.in_(order_ids))).rowcount
    return purged, storage_names


def referenced(connection: Connection, names: list[str]) -> set[str]:
    """Which of these storage names an image row refers to."""
    statement = select(order_images.c.storage_name).where(order_images.c.storage_name.in_(names))
    return set(connection.execute(statement).scalars())


async def cleanup(
    transactions: lastro.Transactions, store: lastro.FileStore, settings: OrdersSettings
) -> Cleaned:
    """One cleanup, in batches that each hold the write lock briefly."""
    started = now()
    cutoff = started - timedelta(days=settings.PURGE_AFTER_DAYS)
    purged = 0
    while True:
        count, names = await transactions.write(purge_orders, cutoff)
        await store.delete(*names)  # after the commit: a crash before this leaves files, never rows
        purged += count
        if not count:
            break
    orphans = await _remove_orphans(transactions, store, time.time() - settings.ORPHAN_GRACE_SECONDS)
    keys = await transactions.write(
        purge_idempotency_keys, started - timedelta(seconds=settings.IDEMPOTENCY_WINDOW)
    )
    cleaned = Cleaned(purged, orphans, keys)
    if purged or orphans or keys:
        logger.info("cleaned up", orders=purged, orphan_files=orphans, idempotency_keys=keys)
    return cleaned


async def _remove_orphans(
    transactions: lastro.Transactions, store: lastro.FileStore, written_before: float
) -> int:
    names = await store.names(modified_before=written_before)
    removed = 0
    for start in range(0, len(names), _BATCH):
        batch = names[start : start + _BATCH]
        orphans = sorted(set(batch) - await transactions.read(referenced, batch))
        await store.delete(*orphans)
        removed += len(orphans)
    return removed
