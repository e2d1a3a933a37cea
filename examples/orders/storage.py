"""What every query module of the service shares: how times are stored, which ids can exist, and an
INSERT that tolerates a concurrent one."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Column, Connection, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["MAX_ID", "insert_ignoring_duplicates", "insert_or_nothing", "now", "storable_id"]

# Ids are INTEGER columns, 32-bit on PostgreSQL. A larger id names nothing, and the drivers refuse to bind it
# (PostgreSQL past 32 bits, SQLite past 64), which would answer 500 instead of 404.
MAX_ID = 2**31 - 1


def storable_id(value: int) -> bool:
    """Whether a row could have this id at all."""
    return 0 < value <= MAX_ID


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # stored as naive UTC on every engine


def insert_ignoring_duplicates(connection: Connection, table: Table, values: dict[str, Any]) -> bool:
    """INSERT, doing nothing when the key exists (waiting for a concurrent insert of it to finish)."""
    # RETURNING, not rowcount: PostgreSQL reports -1 as the row count of an INSERT that returns rows.
    statement = insert_or_nothing(table, connection.dialect.name, *table.primary_key.columns)
    return connection.execute(statement, values).first() is not None


@cache
def insert_or_nothing(table: Table, dialect: str, *returning: Column[Any]) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` into `table` in the named dialect, optionally `RETURNING`,
    built once for each, not per request: the values are parameters."""
    module = postgresql if dialect == "postgresql" else sqlite
    statement: Insert = module.insert(table).on_conflict_do_nothing()
    return statement.returning(*returning) if returning else statement
