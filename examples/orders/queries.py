"""The orders' queries: plain functions on a connection, run inside a lastro unit of work.

Every query takes the caller's tenant: an order of another tenant is simply not found. They return the
API's models, so a route returns what a query gave it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Integer, and_, bindparam, insert, select, update

import lastro
from examples.orders.cursors import decode_cursor, encode_cursor
from examples.orders.errors import Conflict, NotFound, Precondition
from examples.orders.models import TRANSITIONS, Item, Order, OrderIn, OrderPatch, Status
from examples.orders.schema import orders
from examples.orders.storage import now, storable_id

__all__ = [
    "OrderFilter",
    "create_order",
    "delete_order",
    "get_order",
    "list_orders",
    "live_order",
    "order_document",
    "require_order",
    "to_order",
    "update_order",
]

_COLUMNS = (  # `to_order` unpacks a row in this order
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


def order_document(row: Sequence[Any]) -> dict[str, Any]:
    """The order as JSON data, from a row of `_COLUMNS`: what `to_order` validates, and the list's fast path.

    A page of orders validated into models cost more CPU than the rest of the request, so the list sends
    this as it is (`lastro.JSONResponse`). Money in cents divides to the same float the model's Decimal
    gives; times are UTC with a `Z`, as pydantic writes them. `tests/examples/test_documents.py` and the
    schema conformance test keep it equal to the model.
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


def to_order(row: Sequence[Any]) -> Order:
    """The order as the API shows it, from a row of `_COLUMNS`."""
    return Order.model_validate(order_document(row))


def _stored_items(items: list[Item]) -> tuple[list[dict[str, Any]], int]:
    """The items as the JSON column keeps them (money in integer cents), and the order's total."""
    stored: list[dict[str, Any]] = [
        {"sku": i.sku, "name": i.name, "quantity": i.quantity, "unit_price_cents": int(i.unit_price * 100)}
        for i in items
    ]
    return stored, sum(item["quantity"] * item["unit_price_cents"] for item in stored)


# The statements a request runs are built once, at import, with bound parameters; the hottest run on the
# driver's cursor (lastro.Prepared).
_INSERT_ORDER = lastro.Prepared(insert(orders).returning(orders.c.id))


def create_order(connection: Connection, tenant_id: int, order: OrderIn) -> Order:
    items, total = _stored_items(order.items)
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
    # Only the id comes back: the rest of the row is what was just sent.
    order_id = _INSERT_ORDER.scalar_one(connection, **values)
    return to_order(
        (order_id, order.customer, items, total, Status.RECEIVED.value, order.notes, 1, stamp, stamp)
    )


def live_order(tenant_id: Any, order_id: Any) -> Any:
    """The condition for an order of the tenant that is not deleted; values or bind parameters."""
    return and_(orders.c.id == order_id, orders.c.tenant_id == tenant_id, orders.c.deleted_at.is_(None))


_SELECT_ORDER = select(*_COLUMNS).where(live_order(bindparam("tenant_id"), bindparam("order_id")))
_GET_ORDER = lastro.Prepared(_SELECT_ORDER)
_GET_ORDER_FOR_UPDATE = lastro.Prepared(_SELECT_ORDER.with_for_update())


def _row(connection: Connection, tenant_id: int, order_id: int, *, for_update: bool = False) -> Any:
    if not storable_id(order_id):
        raise NotFound(f"order {order_id} not found")
    # SQLite's write units already hold the database's write lock; PostgreSQL locks the row.
    locking = for_update and connection.dialect.name == "postgresql"
    query = _GET_ORDER_FOR_UPDATE if locking else _GET_ORDER
    row = query.first(connection, order_id=order_id, tenant_id=tenant_id)
    if row is None:
        raise NotFound(f"order {order_id} not found")
    return row


def get_order(connection: Connection, tenant_id: int, order_id: int) -> dict[str, Any]:
    """The order as JSON data (`order_document`), for `lastro.JSONResponse`: the read answered most."""
    return order_document(_row(connection, tenant_id, order_id))


def require_order(connection: Connection, tenant_id: int, order_id: int, *, for_update: bool = False) -> None:
    """Raise NotFound unless the order is the tenant's and live; `for_update` locks it until the commit."""
    _row(connection, tenant_id, order_id, for_update=for_update)


# An UPDATE reserves its columns' names for its SET clause: the conditions' parameters are named otherwise.
_THIS_VERSION = and_(
    live_order(bindparam("tenant"), bindparam("order")), orders.c.version == bindparam("current_version")
)
_STAMP = bindparam("stamp", type_=orders.c.updated_at.type)
# A PATCH sets the fields it was given: one statement for each combination of them, built once.
_UPDATE_ORDER = lastro.PartialUpdate(
    update(orders)
    .where(_THIS_VERSION)
    .values(version=orders.c.version + 1, updated_at=_STAMP)
    .returning(*_COLUMNS),
    orders.c.status,
    orders.c.notes,
    orders.c["items"],
    orders.c.total_cents,
)
_DELETE_ORDER = (
    update(orders)
    .where(_THIS_VERSION)
    .values(deleted_at=_STAMP, updated_at=_STAMP, version=orders.c.version + 1)
)


def update_order(
    connection: Connection, tenant_id: int, order_id: int, expected_version: int | None, patch: OrderPatch
) -> Order:
    """Apply `patch` if the order is still at `expected_version` (`None`: whatever version it is at)."""
    row = _row(connection, tenant_id, order_id, for_update=True)
    if expected_version is not None and row.version != expected_version:
        raise Precondition(order_id)
    changes = _changes(Status(row.status), patch)
    if not changes:
        return to_order(row)
    return to_order(
        _UPDATE_ORDER.one(
            connection, changes, tenant=tenant_id, order=order_id, current_version=row.version, stamp=now()
        )
    )


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
        changes["items"], changes["total_cents"] = _stored_items(patch.items)
    return changes


def delete_order(
    connection: Connection, tenant_id: int, order_id: int, expected_version: int | None
) -> tuple[int, datetime]:
    """Soft-delete the order (the cleanup job purges it later); `expected_version` as for `update_order`.

    Returns the order's new version and the time of the deletion.
    """
    row = _row(connection, tenant_id, order_id, for_update=True)
    if expected_version is not None and row.version != expected_version:
        raise Precondition(order_id)
    stamp = now()
    params = {"tenant": tenant_id, "order": order_id, "current_version": row.version, "stamp": stamp}
    connection.execute(_DELETE_ORDER, params)
    return row.version + 1, stamp


@dataclass(frozen=True)
class OrderFilter:
    status: Status | None = None
    customer: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


def _naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # before year 1 or after 9999 in UTC: the bound is past every stored time
        return datetime.min if moment.year == 1 else datetime.max


# Newest first, keyset-paginated on the id: a concurrent insert never shifts a page.
_PAGE = lastro.FilteredSelect(
    select(*_COLUMNS)
    .where(orders.c.tenant_id == bindparam("tenant_id"), orders.c.deleted_at.is_(None))
    .order_by(orders.c.id.desc())
    .limit(bindparam("limit", type_=Integer())),
    status=orders.c.status == bindparam("status"),
    customer=orders.c.customer == bindparam("customer"),
    created_from=orders.c.created_at >= bindparam("created_from", type_=orders.c.created_at.type),
    created_to=orders.c.created_at < bindparam("created_to", type_=orders.c.created_at.type),
    after=orders.c.id < bindparam("after"),
)


def _page_values(tenant_id: int, where: OrderFilter, limit: int, after: int | None) -> dict[str, Any]:
    """The values of one page's query: one more row than `limit`, to know whether another page follows."""
    return {
        "tenant_id": tenant_id,
        "limit": limit + 1,
        "status": where.status.value if where.status is not None else None,
        "customer": where.customer,
        "created_from": _naive_utc(where.created_from),
        "created_to": _naive_utc(where.created_to),
        "after": after,
    }


def list_query(
    tenant_id: int, where: OrderFilter, limit: int, after: int | None
) -> tuple[Any, dict[str, Any]]:
    """The statement of one page, and its parameters."""
    return _PAGE.bind(**_page_values(tenant_id, where, limit, after))


def list_orders(
    connection: Connection, tenant_id: int, where: OrderFilter, limit: int, cursor: str | None
) -> dict[str, Any]:
    """One page as JSON data shaped like `OrderPage`, for `lastro.JSONResponse`."""
    after = decode_cursor(cursor) if cursor else None
    rows = _PAGE.all(connection, **_page_values(tenant_id, where, limit, after))
    page = rows[:limit]
    more = len(rows) > limit and page
    return {
        "items": [order_document(row) for row in page],
        "next_cursor": encode_cursor(page[-1].id) if more else None,
    }
