"""The audit log of order changes: who changed which order, to which version, when.

Entries are written in batches after the change committed (`examples/orders/audit.py`). Their id is made
by the service, so a batch written twice (its COMMIT's reply lost, then retried) inserts each entry once.
No foreign key to `orders`: the log outlives the orders the purge removes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_audit",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("order_id", sa.Integer, nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_order_audit_tenant_order_at", "order_audit", ["tenant_id", "order_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_order_audit_tenant_order_at", table_name="order_audit")
    op.drop_table("order_audit")
