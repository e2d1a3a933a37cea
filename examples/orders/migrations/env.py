"""Alembic environment of the orders service: run by `lastro db upgrade`."""

from alembic import context

from examples.orders.schema import metadata
from lastro.db.migrations import run_migrations

run_migrations(context, metadata)
