"""The orders list query, as the repository builds it, is served by an index on SQLite and PostgreSQL.

The database is migrated with examples/orders/migrations, then the planner is asked for the plan of
`list_query` for each filter the API offers (with and without a keyset cursor).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from examples.orders.models import Status
from examples.orders.repository import OrderFilter, list_query
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
