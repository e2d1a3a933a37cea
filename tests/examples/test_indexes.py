"""The orders list query and the periodic purge, as the service builds them, are served by indexes on
SQLite and PostgreSQL.

The database is migrated with examples/orders/migrations, then the planner is asked for the plan of
`list_query` for each filter the API offers (with and without a keyset cursor), and of every statement
`purge_orders` and `purge_idempotency_keys` send, captured as they run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Connection, event

from examples.orders import accounts, idempotency, images, queries, storage
from examples.orders.cleanup import purge_orders
from examples.orders.models import OrderIn, Status
from examples.orders.queries import OrderFilter, list_query
from lastro.db.engine import Database
from lastro.db.migrations import upgrade
from tests.conftest import POSTGRES_URL

MIGRATIONS = Path(__file__).resolve().parents[2] / "examples" / "orders" / "migrations"
TENANT = 7
PAGE = 50

# filter, the indexes that may serve it (the planner picks among them for a date range)
CASES = {
    "default": (OrderFilter(), {"ix_orders_tenant_id"}),
    "status": (OrderFilter(status=Status.READY), {"ix_orders_tenant_status"}),
    "customer": (OrderFilter(customer="ACME"), {"ix_orders_tenant_customer"}),
    "created_range": (
        OrderFilter(
            created_from=datetime(2025, 1, 1, tzinfo=UTC), created_to=datetime(2025, 2, 1, tzinfo=UTC)
        ),
        {"ix_orders_tenant_created", "ix_orders_tenant_id"},
    ),
    "created_from": (
        OrderFilter(created_from=datetime(2025, 1, 1, tzinfo=UTC)),
        {"ix_orders_tenant_created", "ix_orders_tenant_id"},
    ),
    "created_to": (
        OrderFilter(created_to=datetime(2025, 2, 1, tzinfo=UTC)),
        {"ix_orders_tenant_created", "ix_orders_tenant_id"},
    ),
}
EQUALITY_CASES = ["default", "status", "customer"]
CURSORS = [pytest.param(None, id="first-page"), pytest.param(1234, id="next-page")]


def _sql(database: Database, case: str, after: int | None) -> str:
    where, _ = CASES[case]
    statement, params = list_query(TENANT, where, PAGE, after)
    compiled = statement.params(**params).compile(
        dialect=database.engine.dialect, compile_kwargs={"literal_binds": True}
    )
    return str(compiled)


# The purge's statements, each with the index it must search (None: the primary key).
PURGE_INDEXES = {
    "SELECT orders.id": "ix_orders_deleted_at",
    "DELETE FROM order_images": "ix_order_images_order",
    "DELETE FROM orders": None,
    "DELETE FROM idempotency_keys": "ix_idempotency_keys_created_at",
}


def _purge(connection: Connection) -> None:
    """One deleted order with an image and one idempotency key, then both purges, past their windows."""
    tenant_id = accounts.create_tenant(connection, f"purge-{uuid.uuid4().hex[:8]}")
    order = OrderIn.model_validate(
        {"customer": "ACME", "items": [{"sku": "A-1", "name": "Anvil", "quantity": 1, "unit_price": 1}]}
    )
    order_id = queries.create_order(connection, tenant_id, order).id
    images.add_image(connection, tenant_id, order_id, "image/png", 1, f"{uuid.uuid4().hex}.png")
    queries.delete_order(connection, tenant_id, order_id, None)
    idempotency.claim_key(connection, tenant_id, "key-1", "0" * 64)
    later = storage.now() + timedelta(seconds=1)
    assert purge_orders(connection, later)[0] == 1
    assert idempotency.purge_idempotency_keys(connection, later) == 1


def _purge_statements(database: Database) -> list[tuple[str, str, object]]:
    """(kind, SQL, parameters) of each statement the purges send, captured on a transaction rolled back."""
    sent: list[tuple[str, object]] = []

    def capture(*args: object) -> None:
        statement, parameters = args[2], args[3]
        sent.append((str(statement), parameters))

    with database.engine.connect() as connection, connection.begin() as transaction:
        event.listen(connection, "before_cursor_execute", capture)
        try:
            _purge(connection)
        finally:
            event.remove(connection, "before_cursor_execute", capture)
        transaction.rollback()
    statements = []
    for statement, parameters in sent:
        kinds = [kind for kind in PURGE_INDEXES if statement.startswith(kind)]
        is_purge = kinds and (
            "deleted_at <" in statement or "created_at <" in statement or " IN " in statement
        )
        if is_purge:
            statements.append((kinds[0], statement, parameters))
    assert sorted(kind for kind, _, _ in statements) == sorted(PURGE_INDEXES), sent
    return statements


# --- SQLite ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_orders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('indexes') / 'orders.db'}")
    upgrade(database, MIGRATIONS)
    yield database
    database.dispose()


def _sqlite_plan(database: Database, case: str, after: int | None) -> list[str]:
    with database.engine.connect() as connection:
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {_sql(database, case, after)}").all()
    return [str(row[3]) for row in rows]


@pytest.mark.parametrize("after", CURSORS)
@pytest.mark.parametrize("case", list(CASES))
def test_sqlite_list_query_searches_an_orders_index(
    sqlite_orders: Database, case: str, after: int | None
) -> None:
    """Each list filter is a SEARCH using one of its indexes, never a bare SCAN of orders."""
    plan = _sqlite_plan(sqlite_orders, case, after)
    assert not any(step.startswith("SCAN orders") for step in plan), plan
    searches = [step for step in plan if step.startswith("SEARCH orders USING")]
    assert len(searches) == 1, plan
    assert "USING INDEX" in searches[0] or "USING COVERING INDEX" in searches[0]
    assert any(f"INDEX {index} (" in searches[0] for index in CASES[case][1]), plan


@pytest.mark.parametrize("after", CURSORS)
@pytest.mark.parametrize("case", EQUALITY_CASES)
def test_sqlite_index_also_gives_the_newest_first_order(
    sqlite_orders: Database, case: str, after: int | None
) -> None:
    """For the default, status and customer lists the index order is the page order: no sort step."""
    plan = _sqlite_plan(sqlite_orders, case, after)
    assert not any("TEMP B-TREE" in step for step in plan), plan


@pytest.mark.parametrize("case", EQUALITY_CASES)
def test_sqlite_cursor_bounds_the_index_range(sqlite_orders: Database, case: str) -> None:
    """The keyset cursor (`id < after`) is part of the index search, not a filter applied afterwards."""
    plan = _sqlite_plan(sqlite_orders, case, 1234)
    assert any("id<?)" in step for step in plan), plan


def test_sqlite_purge_statements_search_an_index(sqlite_orders: Database) -> None:
    """Each statement of the purges is an index SEARCH, never a SCAN of the table it purges."""
    with sqlite_orders.engine.connect() as connection:
        for kind, statement, parameters in _purge_statements(sqlite_orders):
            plan = [
                str(row[3])
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            ]  # type: ignore[arg-type]
            assert not any(step.startswith("SCAN") for step in plan), (kind, plan)
            index = PURGE_INDEXES[kind]
            wanted = f"INDEX {index} (" if index else "USING INTEGER PRIMARY KEY"
            assert any(step.startswith("SEARCH") and wanted in step for step in plan), (kind, plan)


def test_sqlite_deleted_orders_index_holds_only_deleted_orders(sqlite_orders: Database) -> None:
    """The orders purge index is partial: live orders are not in it."""
    with sqlite_orders.engine.connect() as connection:
        definition = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'ix_orders_deleted_at'"
        ).scalar_one()
    assert "WHERE deleted_at IS NOT NULL" in definition


# --- PostgreSQL -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_orders() -> Iterator[Database]:
    """The migrated orders tables in a schema of their own, dropped afterwards."""
    schema = f"lastro_idx_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    database = Database(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    try:
        upgrade(database, MIGRATIONS)
        yield database
    finally:
        database.dispose()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.mark.postgres
@pytest.mark.parametrize("after", CURSORS)
@pytest.mark.parametrize("case", list(CASES))
def test_postgres_list_query_uses_an_index_scan(
    postgres_orders: Database, case: str, after: int | None
) -> None:
    """With sequential scans discouraged, each list filter is an Index Scan on one of its orders indexes."""
    with postgres_orders.engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(
            str(row[0]) for row in connection.exec_driver_sql(f"EXPLAIN {_sql(postgres_orders, case, after)}")
        )
    assert "Seq Scan" not in plan, plan
    assert "Index Scan" in plan, plan
    assert any(f"using {index} on orders" in plan for index in CASES[case][1]), plan


@pytest.mark.postgres
def test_postgres_purge_statements_use_an_index(postgres_orders: Database) -> None:
    """With sequential scans discouraged, each statement of the purges is an index scan on its index."""
    with postgres_orders.engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        for kind, statement, parameters in _purge_statements(postgres_orders):
            rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)  # type: ignore[arg-type]
            plan = "\n".join(str(row[0]) for row in rows)
            assert "Seq Scan" not in plan, (kind, plan)
            index = PURGE_INDEXES[kind] or "orders_pkey"
            # An index scan, or a bitmap built from the index when the planner expects several rows.
            assert f"using {index} on" in plan or f"Bitmap Index Scan on {index}" in plan, (kind, plan)
