"""Migrations: the orders example's Alembic scripts applied to SQLite and PostgreSQL, idempotently."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy import inspect

from lastro import ConfigurationError
from lastro.db.engine import Database
from lastro.db.migrations import current_revision, head_revision, schema_problem, upgrade
from tests.conftest import POSTGRES_URL

MIGRATIONS = Path(__file__).resolve().parents[2] / "examples" / "orders" / "migrations"
HEAD = "0004"  # the newest revision of the orders example
TABLES = {"tenants", "users", "orders", "order_images", "idempotency_keys", "order_audit", "alembic_version"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database: a new SQLite file, or a new PostgreSQL schema reached through search_path."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'migrate.db'}")
        yield database
        database.dispose()
        return
    schema = f"lastro_mig_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    database = Database(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    try:
        yield database
    finally:
        database.dispose()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _tables(database: Database) -> set[str]:
    with database.engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def test_head_revision_is_the_latest_script() -> None:
    """head_revision() reads the scripts directory without a database."""
    assert head_revision(MIGRATIONS) == HEAD


def test_fresh_database_has_no_revision(database: Database) -> None:
    """Before any upgrade there is no current revision."""
    assert current_revision(database) is None


def test_upgrade_applies_the_migrations(database: Database) -> None:
    """upgrade() goes from nothing to head and creates the tables."""
    assert upgrade(database, MIGRATIONS) == (None, HEAD)
    assert _tables(database) == TABLES


def test_current_revision_is_head_after_upgrade(database: Database) -> None:
    """After upgrade the database is at the head revision."""
    upgrade(database, MIGRATIONS)
    assert current_revision(database) == head_revision(MIGRATIONS)


def test_second_upgrade_is_a_no_op(database: Database) -> None:
    """Running upgrade again changes nothing and reports head before and after."""
    upgrade(database, MIGRATIONS)
    assert upgrade(database, MIGRATIONS) == (HEAD, HEAD)
    assert _tables(database) == TABLES
    assert current_revision(database) == HEAD


def test_upgrade_creates_the_orders_indexes(database: Database) -> None:
    """The list-query indexes exist after the upgrade."""
    upgrade(database, MIGRATIONS)
    with database.engine.connect() as connection:
        names = {index["name"] for index in inspect(connection).get_indexes("orders")}
    assert {
        "ix_orders_tenant_id",
        "ix_orders_tenant_status",
        "ix_orders_tenant_customer",
        "ix_orders_tenant_created",
    } <= names


def test_a_database_at_0001_gets_the_purge_indexes_with_its_rows(database: Database) -> None:
    """Upgrading a database that already holds orders adds the purge indexes and keeps every row."""
    upgrade(database, MIGRATIONS, "0001")
    with database.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO tenants (id, name, created_at) VALUES (1, 'acme', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO orders (tenant_id, customer, items, total_cents, status, version, created_at,"
            " updated_at, deleted_at) VALUES (1, 'ACME', '[]', 0, 'received', 1, '2026-01-01', '2026-01-01',"
            " NULL), (1, 'ACME', '[]', 0, 'cancelled', 2, '2026-01-01', '2026-01-02', '2026-01-02')"
        )
    assert upgrade(database, MIGRATIONS, "0002") == ("0001", "0002")
    with database.engine.connect() as connection:
        orders_indexes = {index["name"] for index in inspect(connection).get_indexes("orders")}
        key_indexes = {index["name"] for index in inspect(connection).get_indexes("idempotency_keys")}
        count = connection.exec_driver_sql("SELECT count(*) FROM orders").scalar_one()
    assert "ix_orders_deleted_at" in orders_indexes
    assert "ix_idempotency_keys_created_at" in key_indexes
    assert count == 2


def test_a_database_at_0002_keeps_its_idempotency_keys_with_their_headers(database: Database) -> None:
    """Upgrading to 0003 gives each stored 201 the ETag and Location of its order; nothing is lost."""
    upgrade(database, MIGRATIONS, "0002")
    body = '{"id": 41, "version": 3, "customer": "ACME"}'
    with database.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO tenants (id, name, created_at) VALUES (1, 'acme', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash, status_code, response, created_at)"
            f" VALUES (1, 'done', 'h1', 201, '{body}', '2026-01-01'),"
            " (1, 'pending', 'h2', NULL, NULL, '2026-01-01'), (1, 'odd', 'h3', 201, 'not json', '2026-01-01')"
        )
    assert upgrade(database, MIGRATIONS) == ("0002", HEAD)
    with database.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT key, response_headers, response FROM idempotency_keys ORDER BY key"
        ).all()
    stored = {
        key: (headers if isinstance(headers, dict | None) else json.loads(headers), response)
        for key, headers, response in rows
    }
    assert stored == {
        "done": ({"ETag": '"3"', "Location": "/api/orders/41"}, body),
        "odd": (None, "not json"),
        "pending": (None, None),
    }


def test_a_database_at_0003_gets_the_audit_table_and_its_index(database: Database) -> None:
    """Upgrading to 0004 creates `order_audit` with its (tenant, order, time) index; downgrading drops it."""
    upgrade(database, MIGRATIONS, "0003")
    assert upgrade(database, MIGRATIONS) == ("0003", HEAD)
    with database.engine.connect() as connection:
        indexes = {
            index["name"]: index["column_names"] for index in inspect(connection).get_indexes("order_audit")
        }
    assert indexes["ix_order_audit_tenant_order_at"] == ["tenant_id", "order_id", "at"]
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")
    assert "order_audit" not in _tables(database)


def test_directory_without_env_py_is_refused(tmp_path: Path) -> None:
    """A MIGRATIONS_DIR that is not an Alembic scripts directory raises ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match="MIGRATIONS_DIR"):
        head_revision(tmp_path)


def test_alembic_command_without_lastro_is_refused(tmp_path: Path) -> None:
    """The env.py refuses to run without the connection lastro hands over (plain `alembic upgrade`)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{tmp_path / 'plain.db'}")
    with pytest.raises(ConfigurationError, match="lastro db upgrade"):
        command.upgrade(config, "head")


def test_schema_problem_is_none_at_the_head(database: Database) -> None:
    """A database upgraded to the head of the scripts passes the start-up check."""
    upgrade(database, MIGRATIONS)
    assert schema_problem(database, MIGRATIONS) is None


def test_schema_problem_names_both_revisions_and_the_command(database: Database) -> None:
    """A database behind the scripts gets one line: its revision, the head, and what to run."""
    problem = schema_problem(database, MIGRATIONS)
    assert problem is not None
    assert "at revision none" in problem
    assert str(head_revision(MIGRATIONS)) in problem
    assert f"lastro db upgrade --migrations {MIGRATIONS}" in problem


def test_importing_the_module_does_not_load_alembic() -> None:
    """Alembic (10 MB) is loaded only by the functions that use it."""
    code = "import sys, lastro.db.migrations, lastro.lifecycle; print('alembic' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
