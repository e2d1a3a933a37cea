"""FastAPI dependencies that give each request a unit of work, read-only or read-write.

```python
@router.get("/orders/{order_id}")
async def get_order(order_id: int, unit: lastro.ReadUnit) -> Order:
    return await unit.run(orders.get, order_id)
```

`unit.run(work, *args, **kwargs)` runs `work(connection, *args, **kwargs)` in one transaction, with retry
and the circuit breaker (see `lastro.db.transactions`); mypy checks the arguments against `work`'s
signature. A database outage answers 503 problem+json at once.
"""

from __future__ import annotations

from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Request

from lastro.db.transactions import Mode, Transactions, WorkOf
from lastro.state import ServiceState

__all__ = ["ReadUnit", "UnitOfWork", "WriteUnit", "transactions_of"]

T = TypeVar("T")
P = ParamSpec("P")


class UnitOfWork:
    """A request's access to the database, in one mode."""

    __slots__ = ("mode", "transactions")

    def __init__(self, transactions: Transactions, mode: Mode) -> None:
        self.transactions = transactions
        self.mode = mode

    async def run(self, work: WorkOf[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `work(connection, *args, **kwargs)` in one transaction of this unit's mode."""
        if self.mode == "write":
            return await self.transactions.write(work, *args, **kwargs)
        return await self.transactions.read(work, *args, **kwargs)


def transactions_of(request: Request) -> Transactions:
    """The service's `Transactions`; `ServiceUnavailable` (503) until start-up has opened the database."""
    state: ServiceState = request.app.state.lastro
    return state.transactions


# async: a plain `def` dependency would cost a hop to the thread pool on every request.
async def _read_unit(request: Request) -> UnitOfWork:
    return UnitOfWork(transactions_of(request), "read")


async def _write_unit(request: Request) -> UnitOfWork:
    return UnitOfWork(transactions_of(request), "write")


ReadUnit = Annotated[UnitOfWork, Depends(_read_unit)]
WriteUnit = Annotated[UnitOfWork, Depends(_write_unit)]
