"""Idempotency keys keep the headers of the response they replay (ETag, Location), not only its body.

Keys stored before this revision get the headers their order's response had, read from the stored body,
so a retry within the window still gets the whole first response.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

keys = sa.table(
    "idempotency_keys",
    sa.column("tenant_id", sa.Integer),
    sa.column("key", sa.String),
    sa.column("status_code", sa.Integer),
    sa.column("response_headers", sa.JSON),
    sa.column("response", sa.Text),
)


def _headers(body: str) -> dict[str, str] | None:
    try:
        order = json.loads(body)
        return {"ETag": f'"{int(order["version"])}"', "Location": f"/api/orders/{int(order['id'])}"}
    except (ValueError, TypeError, KeyError):
        return None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("response_headers", sa.JSON))
    connection = op.get_bind()
    stored = connection.execute(
        sa.select(keys.c.tenant_id, keys.c.key, keys.c.response).where(keys.c.status_code == 201)
    ).all()
    for tenant_id, key, body in stored:
        headers = _headers(body or "")
        if headers is not None:
            connection.execute(
                keys.update()
                .where(keys.c.tenant_id == tenant_id, keys.c.key == key)
                .values(response_headers=headers)
            )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("response_headers")
