"""Indexes for the periodic purge: soft-deleted orders by deletion time, idempotency keys by age.

Without them each purge scans both tables while it holds the write lock (`BEGIN IMMEDIATE` on SQLite). The
orders index is partial: it holds only the deleted orders, so live orders' writes do not maintain it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DELETED = sa.text("deleted_at IS NOT NULL")


def upgrade() -> None:
    # Batch mode on SQLite: creating an index needs no copy of the table, so the batch runs it in place.
    with op.batch_alter_table("orders") as batch:
        batch.create_index(
            "ix_orders_deleted_at", ["deleted_at"], sqlite_where=DELETED, postgresql_where=DELETED
        )
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.create_index("ix_idempotency_keys_created_at", ["created_at"])


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_index("ix_idempotency_keys_created_at")
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_deleted_at")
