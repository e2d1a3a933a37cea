"""The periodic purge: orders deleted longer ago than ORDERS_RETENTION, with their images, and
Idempotency-Keys past IDEMPOTENCY_WINDOW."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select

import lastro
from examples.orders.idempotency import purge_idempotency_keys
from examples.orders.schema import order_images, orders
from examples.orders.settings import OrdersSettings
from examples.orders.storage import now

__all__ = ["purge_once", "purge_orders", "purge_periodically"]

logger = lastro.get_logger("orders.purge")


def purge_orders(connection: Connection, deleted_before: datetime, limit: int = 500) -> tuple[int, list[str]]:
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


async def purge_once(
    transactions: lastro.Transactions, store: lastro.FileStore, settings: OrdersSettings
) -> int:
    """Purge once, in batches that each hold the write lock briefly; returns how many orders went."""
    started = now()
    cutoff = started - timedelta(seconds=settings.ORDERS_RETENTION)
    total = 0
    while True:
        purged, names = await transactions.write(purge_orders, cutoff)
        await store.delete(*names)  # after the commit: a crash before this leaves files, never rows
        total += purged
        if not purged:
            break
    key_cutoff = started - timedelta(seconds=settings.IDEMPOTENCY_WINDOW)
    keys = await transactions.write(purge_idempotency_keys, key_cutoff)
    if total or keys:
        logger.info("purged", orders=total, idempotency_keys=keys)
    return total


async def purge_periodically(
    transactions: lastro.Transactions, store: lastro.FileStore, settings: OrdersSettings
) -> None:
    # Every worker runs this; the random start spreads them out and each purge is idempotent.
    await asyncio.sleep(random.uniform(0, settings.PURGE_INTERVAL))
    while True:
        await purge_once(transactions, store, settings)
        await asyncio.sleep(settings.PURGE_INTERVAL)
