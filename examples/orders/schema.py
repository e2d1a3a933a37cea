"""The orders service's tables (SQLAlchemy Core). Migrations in `migrations/` create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

__all__ = ["idempotency_keys", "metadata", "order_audit", "order_images", "orders", "tenants", "users"]

metadata = MetaData()

tenants = Table(
    "tenants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("customer", String(200), nullable=False),
    Column("items", JSON, nullable=False),  # [{"sku", "name", "quantity", "unit_price_cents"}]
    Column("total_cents", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("notes", Text),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("deleted_at", DateTime),
    # One index per list filter; `id` last so the keyset cursor (newest first) walks the index.
    Index("ix_orders_tenant_id", "tenant_id", "id"),
    Index("ix_orders_tenant_status", "tenant_id", "status", "id"),
    Index("ix_orders_tenant_customer", "tenant_id", "customer", "id"),
    Index("ix_orders_tenant_created", "tenant_id", "created_at"),
    # The purge's: only deleted orders, so live orders' writes do not maintain it.
    Index(
        "ix_orders_deleted_at",
        "deleted_at",
        sqlite_where=text("deleted_at IS NOT NULL"),
        postgresql_where=text("deleted_at IS NOT NULL"),
    ),
)

order_images = Table(
    "order_images",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", Integer, ForeignKey("orders.id"), nullable=False),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("content_type", String(50), nullable=False),
    Column("size", Integer, nullable=False),
    Column("storage_name", String(100), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_order_images_order", "order_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", Integer, ForeignKey("tenants.id"), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    # The first response, replayed for a retry with the same key: NULL while that request is in progress.
    Column("status_code", Integer),
    Column("response_headers", JSON),
    Column("response", Text),
    Column("created_at", DateTime, nullable=False),
    Index("ix_idempotency_keys_created_at", "created_at"),  # the purge of keys past their window
)

# Who changed which order, to which version, when; written in batches (examples/orders/audit.py). The id is
# the service's, so a batch written twice inserts each entry once. No foreign keys: the log outlives purges.
order_audit = Table(
    "order_audit",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Column("order_id", Integer, nullable=False),
    Column("type", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("user_id", Integer),
    Column("at", DateTime, nullable=False),
    Index("ix_order_audit_tenant_order_at", "tenant_id", "order_id", "at"),
)
