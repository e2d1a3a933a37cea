"""`GET /api/orders/{order_id}/audit`: an order's audit log, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel

import lastro
from examples.orders.audit import order_audit_entries
from examples.orders.auth import Caller

__all__ = ["router"]

router = APIRouter(prefix="/api")


class AuditEntryOut(BaseModel):
    id: str
    type: Literal["order.created", "order.updated", "order.deleted"]
    version: int  # the order's version after the change
    user_id: int | None  # who made the change
    at: datetime


class AuditPage(BaseModel):
    items: list[AuditEntryOut]


@router.get(
    "/orders/{order_id}/audit", response_model=AuditPage, tags=["orders"], responses=lastro.problems(401, 404)
)
async def get_order_audit(
    order_id: int,
    caller: Caller,
    unit: lastro.ReadUnit,
    limit: Annotated[int, lastro.page_limit(default=50)],
) -> AuditPage:
    """The order's last `limit` changes (50 unless given, at most MAX_PAGE_SIZE), newest first.

    Entries are written in batches: one appears within `AUDIT_MAX_WAIT` seconds of its change.
    """
    entries = await unit.run(order_audit_entries, caller.tenant_id, order_id, limit)
    return AuditPage(items=[AuditEntryOut(**entry) for entry in entries])
