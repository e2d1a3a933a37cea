"""What follows a committed change to an order, in one place.

Each route that changes an order calls `await changes.record(OrderChange(...))` after its unit of work
committed and before it answers; the steps registered at start-up (the event for the tenant's subscribers,
the audit entry) run in order. A change that did nothing (a PATCH to the same values) records nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Request

__all__ = ["ChangeType", "Changes", "OrderChange", "OrderChanges"]

ChangeType = Literal["order.created", "order.updated", "order.deleted"]
Step = Callable[["OrderChange"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OrderChange:
    type: ChangeType
    tenant_id: int
    order_id: int
    version: int  # the order's version after the change
    at: datetime
    user_id: int | None = None  # who made it; None for the service's own changes


@dataclass
class Changes:
    """The steps every committed change goes through, registered by the application's lifespan."""

    steps: list[Step] = field(default_factory=list)

    def add_step(self, step: Step) -> None:
        self.steps.append(step)

    async def record(self, change: OrderChange) -> None:
        for step in self.steps:
            await step(change)


async def _changes(request: Request) -> Changes:
    changes: Changes = request.app.state.changes
    return changes


OrderChanges = Annotated[Changes, Depends(_changes)]
