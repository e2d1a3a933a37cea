"""Tenants and their users: the queries of sign-in and administration."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from examples.orders.errors import Conflict
from examples.orders.schema import tenants, users
from examples.orders.storage import insert_ignoring_duplicates, now, storable_id

__all__ = ["count_users", "create_tenant", "create_user", "ensure_tenant", "find_user", "tenant_exists"]

_USER = select(users.c.id, users.c.tenant_id, users.c.is_admin, users.c.password_hash)


def find_user(connection: Connection, username: str) -> Any:
    return connection.execute(_USER.where(users.c.username == username)).first()


def count_users(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(users)).scalar_one())


def _tenant_id(connection: Connection, name: str) -> int:
    return int(connection.execute(select(tenants.c.id).where(tenants.c.name == name)).scalar_one())


def create_tenant(connection: Connection, name: str) -> int:
    if not insert_ignoring_duplicates(connection, tenants, {"name": name, "created_at": now()}):
        raise Conflict(f"a tenant named {name!r} exists")
    return _tenant_id(connection, name)


def ensure_tenant(connection: Connection, name: str) -> int:
    """The tenant's id, creating it if there is none of that name."""
    insert_ignoring_duplicates(connection, tenants, {"name": name, "created_at": now()})
    return _tenant_id(connection, name)


def tenant_exists(connection: Connection, tenant_id: int) -> bool:
    if not storable_id(tenant_id):
        return False
    return connection.execute(select(tenants.c.id).where(tenants.c.id == tenant_id)).first() is not None


def create_user(
    connection: Connection, tenant_id: int, username: str, password_hash: str, is_admin: bool
) -> int:
    values = {
        "tenant_id": tenant_id,
        "username": username,
        "password_hash": password_hash,
        "is_admin": is_admin,
        "created_at": now(),
    }
    if not insert_ignoring_duplicates(connection, users, values):
        raise Conflict(f"a user named {username!r} exists")
    return int(connection.execute(select(users.c.id).where(users.c.username == username)).scalar_one())
