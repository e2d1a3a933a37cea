"""Request and response bodies of the orders API."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
)

__all__ = [
    "MAX_TOTAL",
    "NO_NUL",
    "TRANSITIONS",
    "DateTime",
    "ImageBase64In",
    "ImageOut",
    "Item",
    "Order",
    "OrderIn",
    "OrderLine",
    "OrderPage",
    "OrderPatch",
    "Status",
    "TenantIn",
    "TenantOut",
    "Token",
    "UserIn",
    "UserOut",
]

# PostgreSQL text cannot hold a NUL character: refuse it with a 422 instead of failing in the database (500).
NO_NUL = r"^[^\x00]*$"
# Stripped, then at least one character: /openapi.json says so with a pattern, so that "\f" is not "valid".
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NOT_BLANK)
]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NOT_BLANK)
]
# Exact in storage (integer cents) and arithmetic; a JSON number on the wire, as clients expect.
Amount = Annotated[Decimal, PlainSerializer(float, when_used="json")]
Money = Annotated[Amount, Field(ge=0, max_digits=12, decimal_places=2)]


def _not_a_number(value: object) -> object:
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        raise ValueError("a date-time, e.g. 2026-01-31T12:00:00Z, not a number of seconds")
    return value


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# An RFC 3339 date-time, as /openapi.json says: pydantic alone would also take "0.5" as seconds since 1970.
DateTime = Annotated[datetime, BeforeValidator(_not_a_number)]


class Status(StrEnum):
    RECEIVED = "received"
    IN_PRODUCTION = "in_production"
    READY = "ready"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


# received → in_production → ready → delivered, and cancel from any state before delivered.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.RECEIVED: frozenset({Status.IN_PRODUCTION, Status.CANCELLED}),
    Status.IN_PRODUCTION: frozenset({Status.READY, Status.CANCELLED}),
    Status.READY: frozenset({Status.DELIVERED, Status.CANCELLED}),
    Status.DELIVERED: frozenset(),
    Status.CANCELLED: frozenset(),
}


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Text
    name: Text
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price: Money


# total_cents is an INTEGER column, 32-bit on PostgreSQL: a larger total cannot be stored (it was a 500).
MAX_TOTAL = Decimal(2**31 - 1) / 100


def _total_fits(items: list[Item]) -> list[Item]:
    total = sum((item.quantity * item.unit_price for item in items), Decimal(0))
    if total > MAX_TOTAL:
        raise ValueError(f"the order total {total} is over the largest an order may have, {MAX_TOTAL}")
    return items


Items = Annotated[list[Item], Field(min_length=1, max_length=500), AfterValidator(_total_fits)]


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer: Text
    items: Items
    notes: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)


class OrderPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    notes: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)
    items: Items | None = None


# What the API answers carries no input rules: it was checked on the way in, and stays cheap to build.


class OrderLine(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: Amount


class Order(BaseModel):
    id: int
    customer: str
    items: list[OrderLine]
    total: Amount
    status: Status
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    items: list[Order]
    next_cursor: str | None


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class TenantIn(BaseModel):
    name: Name


class TenantOut(BaseModel):
    id: int
    name: str


class UserIn(BaseModel):
    username: Name
    password: Annotated[str, StringConstraints(min_length=8, max_length=200)]
    tenant_id: int
    is_admin: StrictBool = False  # true or false only: 0 or "yes" is a mistake, not a choice


class UserOut(BaseModel):
    id: int
    username: str
    tenant_id: int
    is_admin: bool


class ImageOut(BaseModel):
    id: int
    content_type: str
    size: int
    url: str


class ImageBase64In(BaseModel):
    filename: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=r"\S")
    ]
    content_base64: str
