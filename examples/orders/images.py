"""Order images' rows: what was stored for which order. The files themselves live in a `lastro.FileStore`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from examples.orders.errors import NotFound
from examples.orders.queries import live_order, require_order
from examples.orders.schema import order_images, orders
from examples.orders.storage import now, storable_id

__all__ = ["StoredImage", "add_image", "delete_image", "get_image", "list_images"]


@dataclass(frozen=True, slots=True)
class StoredImage:
    id: int
    order_id: int
    content_type: str
    size: int
    storage_name: str


_IMAGE_COLUMNS = (  # `StoredImage` takes a row in this order
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
    require_order(connection, tenant_id, order_id, for_update=True)
    values = {"order_id": order_id, "tenant_id": tenant_id, "content_type": content_type, "size": size}
    statement = insert(order_images).values(**values, storage_name=storage_name, created_at=now())
    image_id = connection.execute(statement.returning(order_images.c.id)).scalar_one()
    return StoredImage(image_id, order_id, content_type, size, storage_name)


def _images_of(tenant_id: int, order_id: int) -> Any:
    return (
        select(*_IMAGE_COLUMNS)
        .join(orders, orders.c.id == order_images.c.order_id)
        .where(live_order(tenant_id, order_id))
    )


def list_images(connection: Connection, tenant_id: int, order_id: int) -> list[StoredImage]:
    require_order(connection, tenant_id, order_id)
    rows = connection.execute(_images_of(tenant_id, order_id).order_by(order_images.c.id))
    return [StoredImage(*row) for row in rows]


def get_image(connection: Connection, tenant_id: int, order_id: int, image_id: int) -> StoredImage:
    row = None
    if storable_id(image_id) and storable_id(order_id):
        row = connection.execute(_images_of(tenant_id, order_id).where(order_images.c.id == image_id)).first()
    if row is None:
        raise NotFound(f"image {image_id} of order {order_id} not found")
    return StoredImage(*row)


def delete_image(connection: Connection, tenant_id: int, order_id: int, image_id: int) -> str:
    """Remove an image's row and return its storage name, for the caller to remove the file afterwards."""
    image = get_image(connection, tenant_id, order_id, image_id)
    connection.execute(delete(order_images).where(order_images.c.id == image.id))
    return image.storage_name
