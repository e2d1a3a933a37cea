"""Seed the orders service's migrated schema fast: tenant `default`, user admin/admin and N orders.

    DATABASE_URL=sqlite:///var/bench.db .venv/bin/python -m benchmarks.seed_orders 100000

The schema must exist (`lastro db upgrade --migrations examples/orders/migrations`). Rows go in with
SQLAlchemy Core `executemany`, in batches, straight into `examples/orders/schema.py`'s tables: the same rows
the API would write (items as JSON with integer cents, `total_cents`, version 1), with statuses drawn
uniformly at random with a fixed seed, as the baseline's `seed_db.py` does. With the user in place, the
service's development bootstrap creates nothing at start-up.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select

from examples.orders.auth import hash_password
from examples.orders.models import Status
from examples.orders.schema import orders, tenants, users
from lastro.db.engine import Database

__all__ = ["STATUSES", "order_rows", "seed"]

STATUSES = [status.value for status in Status]
BATCH = 10_000
TENANT = "default"
USERNAME = PASSWORD = "admin"


def order_rows(tenant_id: int, count: int, seed: int = 42) -> Iterator[dict[str, Any]]:
    """`count` orders like the baseline's: 1-4 random items, a random customer, one created every ~3 min."""
    rnd = random.Random(seed)
    base = datetime(2024, 1, 1)
    for i in range(1, count + 1):
        created = base + timedelta(minutes=i * 3 + rnd.randint(0, 2))
        items = [
            {
                "sku": f"SKU-{rnd.randint(1, 5000)}",
                "name": f"item {rnd.randint(1, 5000)}",
                "quantity": rnd.randint(1, 5),
                "unit_price_cents": rnd.randint(500, 50_000),
            }
            for _ in range(rnd.randint(1, 4))
        ]
        yield {
            "tenant_id": tenant_id,
            "customer": f"cliente-{rnd.randint(1, 20_000)}",
            "items": items,
            "total_cents": sum(item["quantity"] * item["unit_price_cents"] for item in items),
            "status": rnd.choice(STATUSES),
            "notes": None,
            "version": 1,
            "created_at": created,
            "updated_at": created,
        }


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _tenant_and_admin(connection: Connection, password_hash: str) -> int:
    now = datetime.now()
    connection.execute(insert(tenants).values(name=TENANT, created_at=now))
    tenant_id = int(connection.execute(select(tenants.c.id).where(tenants.c.name == TENANT)).scalar_one())
    connection.execute(
        insert(users).values(
            tenant_id=tenant_id,
            username=USERNAME,
            password_hash=password_hash,
            is_admin=True,
            created_at=now,
        )
    )
    return tenant_id


def seed(url: str, count: int) -> float:
    """Fill a freshly migrated, empty database; return the seconds it took."""
    started = time.perf_counter()
    password_hash = hash_password(PASSWORD)
    database = Database(url)
    try:
        with database.engine.begin() as connection:
            tenant_id = _tenant_and_admin(connection, password_hash)
            for batch in _batches(order_rows(tenant_id, count), BATCH):
                connection.execute(insert(orders), batch)
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if database.is_sqlite:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.exec_driver_sql("ANALYZE")
    finally:
        database.engine.dispose()
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    count = int(args[0]) if args else 100_000
    seconds = seed(os.environ["DATABASE_URL"], count)
    print(f"seeded {count} orders in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
