"""The orders service's queries: plain functions on a connection, run inside a lastro unit of work.

Every order query takes the caller's tenant: an order of another tenant is simply not found.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Integer, Row, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from examples.orders.models import TRANSITIONS, Item, OrderIn, OrderPatch, Status
from examples.orders.schema import idempotency_keys, order_images, orders, tenants, users
from lastro.encoding import dumps_json

__all__ = [
    "Conflict",
    "InvalidCursor",
    "NotFound",
    "Precondition",
    "create_order",
    "decode_cursor",
    "get_order",
    "list_orders",
    "now",
    "update_order",
]

MAX_PAGE = 200
# Ids are INTEGER columns, 32-bit on PostgreSQL. A larger id names nothing, and the drivers refuse to bind it
# (PostgreSQL past 32 bits, SQLite past 64), which would answer 500 instead of 404.
MAX_ID = 2**31 - 1


def _storable_id(value: int) -> bool:
    """Whether a row could have this id at all."""
    return 0 < value <= MAX_ID


class NotFound(Exception):
    pass


class Precondition(Exception):
    """The order changed since the caller read it (its `If-Match` is stale)."""


class Conflict(Exception):
    pass


class InvalidCursor(ValueError):
    pass


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # stored as naive UTC on every engine


def insert_ignoring_duplicates(connection: Connection, table: Any, values: dict[str, Any]) -> bool:
    """INSERT, doing nothing when the key exists (waiting for a concurrent insert of it to finish)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
    # RETURNING, not rowcount: PostgreSQL reports -1 as the row count of an INSERT that returns rows.
    return connection.execute(statement.returning(*table.primary_key.columns)).first() is not None


# --- orders ---------------------------------------------------------------------------------------------


def _items_json(items: list[Item]) -> tuple[list[dict[str, Any]], int]:
    stored: list[dict[str, Any]] = [
        {"sku": i.sku, "name": i.name, "quantity": i.quantity, "unit_price_cents": int(i.unit_price * 100)}
        for i in items
    ]
    return stored, sum(item["quantity"] * item["unit_price_cents"] for item in stored)


def order_document(row: Row[Any] | tuple[Any, ...]) -> dict[str, Any]:
    """The order as the API shows it (`models.Order`), already in JSON types.

    Built by hand rather than validated into the model and dumped again: the row is ours and already
    valid, and that round trip cost more than the query. Money in cents divides to the same float as the
    model's Decimal would give; times are UTC, written with a `Z` like pydantic writes them.
    """
    order_id, customer, items, total_cents, status, notes, version, created_at, updated_at = row
    return {
        "id": order_id,
        "customer": customer,
        "items": [
            {
                "sku": item["sku"],
                "name": item["name"],
                "quantity": item["quantity"],
                "unit_price": item["unit_price_cents"] / 100,
            }
            for item in items
        ],
        "total": total_cents / 100,
        "status": status,
        "notes": notes,
        "version": version,
        "created_at": f"{created_at.isoformat()}Z",  # stored as naive UTC
        "updated_at": f"{updated_at.isoformat()}Z",
    }


def to_json(document: Any) -> bytes:
    return dumps_json(document)


_COLUMNS = (  # `order_document` unpacks a row in this order
    orders.c.id,
    orders.c.customer,
    orders.c["items"],  # `.c.items` is the collection's items() method
    orders.c.total_cents,
    orders.c.status,
    orders.c.notes,
    orders.c.version,
    orders.c.created_at,
    orders.c.updated_at,
)


# The hot statements are built once: building one per call costs more than SQLite takes to run it.
# Only the id comes back: the rest of the row is what was just sent, so reading it back (and decoding its
# JSON and times again) would only cost.
_INSERT_ORDER = insert(orders).returning(orders.c.id)


def create_order(connection: Connection, tenant_id: int, order: OrderIn) -> dict[str, Any]:
    items, total = _items_json(order.items)
    stamp = now()
    values = {
        "tenant_id": tenant_id,
        "customer": order.customer,
        "items": items,
        "total_cents": total,
        "status": Status.RECEIVED.value,
        "notes": order.notes,
        "version": 1,
        "created_at": stamp,
        "updated_at": stamp,
    }
    order_id = connection.execute(_INSERT_ORDER, values).scalar_one()
    row = (order_id, order.customer, items, total, Status.RECEIVED.value, order.notes, 1, stamp, stamp)
    return order_document(row)


def _known_id(order_id: int) -> None:
    if not _storable_id(order_id):
        raise NotFound(f"order {order_id} not found")


def _live_order(tenant_id: Any, order_id: Any) -> Any:
    """The condition for an order of the tenant that is not deleted; values or bind parameters."""
    return and_(orders.c.id == order_id, orders.c.tenant_id == tenant_id, orders.c.deleted_at.is_(None))


def _live(tenant_id: int, order_id: int) -> Any:
    _known_id(order_id)
    return _live_order(tenant_id, order_id)


_GET_ORDER = select(*_COLUMNS).where(_live_order(bindparam("tenant_id"), bindparam("order_id")))
_GET_ORDER_FOR_UPDATE = _GET_ORDER.with_for_update()


def get_order(connection: Connection, tenant_id: int, order_id: int, *, for_update: bool = False) -> Any:
    _known_id(order_id)
    # SQLite's write units already hold the database's write lock; PostgreSQL locks the row.
    locking = for_update and connection.dialect.name == "postgresql"
    query = _GET_ORDER_FOR_UPDATE if locking else _GET_ORDER
    row = connection.execute(query, {"order_id": order_id, "tenant_id": tenant_id}).first()
    if row is None:
        raise NotFound(f"order {order_id} not found")
    return row


def update_order(
    connection: Connection, tenant_id: int, order_id: int, expected_version: int, patch: OrderPatch
) -> dict[str, Any]:
    row = get_order(connection, tenant_id, order_id, for_update=True)
    if row.version != expected_version:
        raise Precondition(order_id)
    changes = _changes(Status(row.status), patch)
    if not changes:
        return order_document(row)
    updated = connection.execute(
        update(orders)
        .where(_live(tenant_id, order_id), orders.c.version == expected_version)
        .values(**changes, version=orders.c.version + 1, updated_at=now())
        .returning(*_COLUMNS)
    ).one()
    return order_document(updated)


def _changes(current: Status, patch: OrderPatch) -> dict[str, Any]:
    fields = patch.model_fields_set
    if not TRANSITIONS[current] and fields:
        raise Conflict(f"an order that is {current.value} can no longer change")
    changes: dict[str, Any] = {}
    if "status" in fields and patch.status is not None and patch.status != current:
        if patch.status not in TRANSITIONS[current]:
            allowed = ", ".join(sorted(status.value for status in TRANSITIONS[current]))
            raise Conflict(
                f"an order that is {current.value} cannot become {patch.status.value} (allowed: {allowed})"
            )
        changes["status"] = patch.status.value
    if "notes" in fields:
        changes["notes"] = patch.notes
    if "items" in fields and patch.items is not None:
        if current is not Status.RECEIVED:
            raise Conflict(f"the items of an order that is {current.value} can no longer change")
        changes["items"], changes["total_cents"] = _items_json(patch.items)
    return changes


def delete_order(connection: Connection, tenant_id: int, order_id: int, expected_version: int | None) -> None:
    row = get_order(connection, tenant_id, order_id, for_update=True)
    if expected_version is not None and row.version != expected_version:
        raise Precondition(order_id)
    stamp = now()
    connection.execute(
        update(orders)
        .where(_live(tenant_id, order_id))
        .values(deleted_at=stamp, updated_at=stamp, version=orders.c.version + 1)
    )


def encode_cursor(order_id: int) -> str:
    return base64.urlsafe_b64encode(f"o:{order_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = text.partition(":")
        if prefix != "o" or not value.isdigit() or not _storable_id(int(value)):
            raise ValueError(cursor)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor("cursor is not one this API returned") from None


@dataclass(frozen=True)
class OrderFilter:
    status: Status | None = None
    customer: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def list_query(
    tenant_id: int, where: OrderFilter, limit: int, after: int | None
) -> tuple[Any, dict[str, Any]]:
    """Newest first, keyset-paginated on the id: a concurrent insert never shifts a page.

    The statement and its parameters: one statement per combination of filters, built once, since
    building and hashing a SELECT anew cost a sixth of the request.
    """
    params: dict[str, Any] = {"tenant_id": tenant_id, "limit": limit + 1}
    if where.status is not None:
        params["status"] = where.status.value
    if where.customer is not None:
        params["customer"] = where.customer
    if where.created_from is not None:
        params["created_from"] = _naive_utc(where.created_from)
    if where.created_to is not None:
        params["created_to"] = _naive_utc(where.created_to)
    if after is not None:
        params["after"] = after
    return _list_statement(frozenset(params)), params


@functools.cache
def _list_statement(names: frozenset[str]) -> Any:
    conditions = [orders.c.tenant_id == bindparam("tenant_id"), orders.c.deleted_at.is_(None)]
    if "status" in names:
        conditions.append(orders.c.status == bindparam("status"))
    if "customer" in names:
        conditions.append(orders.c.customer == bindparam("customer"))
    if "created_from" in names:
        conditions.append(orders.c.created_at >= bindparam("created_from", type_=orders.c.created_at.type))
    if "created_to" in names:
        conditions.append(orders.c.created_at < bindparam("created_to", type_=orders.c.created_at.type))
    if "after" in names:
        conditions.append(orders.c.id < bindparam("after"))
    newest_first = select(*_COLUMNS).where(*conditions).order_by(orders.c.id.desc())
    return newest_first.limit(bindparam("limit", type_=Integer()))


def list_orders(
    connection: Connection, tenant_id: int, where: OrderFilter, limit: int, cursor: str | None
) -> dict[str, Any]:
    after = decode_cursor(cursor) if cursor else None
    rows = connection.execute(*list_query(tenant_id, where, limit, after)).all()
    page = rows[:limit]
    more = len(rows) > limit
    return {
        "items": [order_document(row) for row in page],
        "next_cursor": encode_cursor(page[-1].id) if more and page else None,
    }


# --- idempotency ----------------------------------------------------------------------------------------


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes


def claim_key(connection: Connection, tenant_id: int, key: str, digest: str) -> StoredResponse | None:
    """Claim an idempotency key for this request; return the stored response if it was already used.

    Raises Conflict when the key was used with another body, or is still being processed elsewhere.
    """
    claimed = insert_ignoring_duplicates(
        connection,
        idempotency_keys,
        {"tenant_id": tenant_id, "key": key, "request_hash": digest, "created_at": now()},
    )
    if claimed:
        return None
    row = connection.execute(
        select(
            idempotency_keys.c.request_hash, idempotency_keys.c.status_code, idempotency_keys.c.response
        ).where(idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key)
    ).one()
    if row.request_hash != digest:
        raise KeyReused(key)
    if row.status_code is None:
        raise Conflict("a request with this Idempotency-Key is still in progress")
    return StoredResponse(row.status_code, row.response.encode())


class KeyReused(Exception):
    """The Idempotency-Key was used before with a different body."""


def store_response(connection: Connection, tenant_id: int, key: str, status_code: int, body: str) -> None:
    connection.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key)
        .values(status_code=status_code, response=body)
    )


# --- tenants and users ----------------------------------------------------------------------------------


def find_user(connection: Connection, username: str) -> Any:
    return connection.execute(
        select(users.c.id, users.c.tenant_id, users.c.is_admin, users.c.password_hash).where(
            users.c.username == username
        )
    ).first()


def count_users(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(users)).scalar_one())


def create_tenant(connection: Connection, name: str) -> int:
    if not insert_ignoring_duplicates(connection, tenants, {"name": name, "created_at": now()}):
        raise Conflict(f"a tenant named {name!r} exists")
    return int(connection.execute(select(tenants.c.id).where(tenants.c.name == name)).scalar_one())


def tenant_exists(connection: Connection, tenant_id: int) -> bool:
    if not _storable_id(tenant_id):
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


def ensure_tenant(connection: Connection, name: str) -> int:
    insert_ignoring_duplicates(connection, tenants, {"name": name, "created_at": now()})
    return int(connection.execute(select(tenants.c.id).where(tenants.c.name == name)).scalar_one())


# --- images ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredImage:
    id: int
    order_id: int
    content_type: str
    size: int
    storage_name: str


_IMAGE_COLUMNS = (  # `order_document` unpacks a row in this order
    order_images.c.id,
    order_images.c.order_id,
    order_images.c.content_type,
    order_images.c.size,
    order_images.c.storage_name,
)


def add_image(
    connection: Connection, tenant_id: int, order_id: int, content_type: str, size: int, storage_name: str
) -> StoredImage:
    """Record an image whose file is already stored; the order must be the tenant's and not deleted."""
    get_order(connection, tenant_id, order_id, for_update=True)
    values = {"order_id": order_id, "tenant_id": tenant_id, "content_type": content_type, "size": size}
    image_id = connection.execute(
        insert(order_images).values(**values, storage_name=storage_name, created_at=now())
    ).inserted_primary_key
    assert image_id is not None
    return StoredImage(image_id[0], order_id, content_type, size, storage_name)


def _image_of(tenant_id: int, order_id: int) -> Any:
    return (
        select(*_IMAGE_COLUMNS)
        .join(orders, orders.c.id == order_images.c.order_id)
        .where(_live(tenant_id, order_id))
    )


def list_images(connection: Connection, tenant_id: int, order_id: int) -> list[StoredImage]:
    get_order(connection, tenant_id, order_id)
    rows = connection.execute(_image_of(tenant_id, order_id).order_by(order_images.c.id))
    return [StoredImage(*row) for row in rows]


def get_image(connection: Connection, tenant_id: int, order_id: int, image_id: int) -> StoredImage:
    if not _storable_id(image_id):
        raise NotFound(f"image {image_id} of order {order_id} not found")
    row = connection.execute(_image_of(tenant_id, order_id).where(order_images.c.id == image_id)).first()
    if row is None:
        raise NotFound(f"image {image_id} of order {order_id} not found")
    return StoredImage(*row)


def delete_image(connection: Connection, tenant_id: int, order_id: int, image_id: int) -> str:
    """Remove an image's row and return its storage name, for the caller to remove the file afterwards."""
    image = get_image(connection, tenant_id, order_id, image_id)
    connection.execute(delete(order_images).where(order_images.c.id == image.id))
    return image.storage_name


def purge_orders(connection: Connection, deleted_before: datetime, limit: int = 500) -> tuple[int, list[str]]:
    """Remove up to `limit` orders soft-deleted before the given time, with their images' rows.

    Returns how many orders went and the storage names of their images, whose files the caller removes
    once this transaction has committed.
    """
    doomed = select(orders.c.id).where(orders.c.deleted_at < deleted_before).limit(limit)
    order_ids = list(connection.execute(doomed).scalars())
    if not order_ids:
        return 0, []
    names = connection.execute(
        delete(order_images)
        .where(order_images.c.order_id.in_(order_ids))
        .returning(order_images.c.storage_name)
    ).scalars()
    storage_names = list(names)
    purged = connection.execute(delete(orders).where(orders.c.id.in_(order_ids))).rowcount
    return purged, storage_names


def purge_idempotency_keys(connection: Connection, created_before: datetime) -> int:
    """Forget Idempotency-Keys older than the window in which a client may still retry."""
    statement = delete(idempotency_keys).where(idempotency_keys.c.created_at < created_before)
    return connection.execute(statement).rowcount
