"""The list's hand-built order JSON is byte for byte what the `Order` model writes for the same row."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import pytest

from examples.orders.queries import order_document, to_order
from lastro import JSONResponse


class OrderRow(NamedTuple):
    """A row as the queries select it: the columns in their order, each also by name."""

    id: int
    customer: str
    items: list[dict[str, object]]
    total_cents: int
    status: str
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime


@pytest.mark.parametrize(
    ("cents", "quantity", "notes", "moment"),
    [
        (75, 30, None, datetime(2026, 11, 25, 21, 6, 10, 867979)),
        (1005, 3, "entregar às 7h", datetime(2026, 11, 25, 21, 6, 10)),
        (0, 1, "", datetime(2026, 1, 1)),
        (99_999_999, 2, "x" * 50, datetime(2026, 12, 31, 23, 59, 59, 1)),
        (333, 7, None, datetime(2026, 6, 15, 12, 0, 0, 500000)),
        (1990, 2, 'aspas " e \\ barra', datetime(2026, 2, 28, 0, 0, 0, 10)),
    ],
)
def test_order_json_matches_the_model(cents: int, quantity: int, notes: str | None, moment: datetime) -> None:
    """Money, UTC times, non-ASCII text, escapes and nulls come out exactly as the model writes them."""
    row = OrderRow(
        id=42,
        customer="Padaria São João",
        items=[{"sku": "PAO-01", "name": "Pão francês", "quantity": quantity, "unit_price_cents": cents}],
        total_cents=cents * quantity,
        status="received",
        notes=notes,
        version=3,
        created_at=moment,
        updated_at=moment,
    )
    assert JSONResponse(order_document(row)).body == JSONResponse(to_order(row)).body
