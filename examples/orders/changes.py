"""What goes with a change to an order, in one place.

Each route that changes an order calls `changes.record(connection, OrderChange(...))` inside its write
unit, once the change is made; the steps registered at start-up (the cache's invalidation, the event for
the tenant's subscribers, the audit entry) run there, in order. What a step writes commits with the order
or not at all, and what it must do after the commit it registers with `lastro.on_commit`: done before
`unit.run` returns, so before the route answers. A change that did nothing (a PATCH to the same values)
records nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Request
from sqlalchemy import Connection

__all__ = ["ChangeType", "Changes", "OrderChange", "OrderChanges", "Step"]

ChangeType = Literal["order.created", "order.updated", "order.deleted"]
Step = Callable[[Connection, "OrderChange"], None]


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
    """The steps every change goes through in its write unit, registered by the application's lifespan."""

    steps: list[Step] = field(default_factory=list)

    def add_step(self, step: Step) -> None:
        self.steps.append(step)

    def record(self, connection: Connection, change: OrderChange) -> None:
        for step in self.steps:
            step(connection, change)


async def _changes(request: Request) -> Changes:
    changes: Changes = request.app.state.changes
    return changes


OrderChanges = Annotated[Changes, Depends(_changes)]
