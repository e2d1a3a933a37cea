"""FastAPI dependencies that give each request a unit of work, read-only or read-write.

```python
@router.get("/orders/{order_id}")
async def get_order(order_id: int, unit: lastro.ReadUnit) -> Order:
    return await unit.run(lambda connection: orders.get(connection, order_id))
```

`unit.run(work)` runs `work(connection)` in one transaction, with retry and the circuit breaker (see
`lastro.db.transactions`). A database outage answers 503 problem+json at once.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Request

from lastro.db.transactions import Mode, Transactions, Work
from lastro.errors import ServiceUnavailable

__all__ = ["ReadUnit", "UnitOfWork", "WriteUnit", "transactions_of"]

T = TypeVar("T")


class UnitOfWork:
    """A request's access to the database, in one mode."""

    __slots__ = ("mode", "transactions")

    def __init__(self, transactions: Transactions, mode: Mode) -> None:
        self.transactions = transactions
        self.mode = mode

    async def run(self, work: Work[T]) -> T:
        if self.mode == "write":
            return await self.transactions.write(work)
        return await self.transactions.read(work)


def transactions_of(request: Request) -> Transactions:
    transactions: Transactions | None = request.app.state.lastro.transactions
    if transactions is None:
        raise ServiceUnavailable("the database is not open yet")
    return transactions


# async: a plain `def` dependency would cost a hop to the thread pool on every request.
async def _read_unit(request: Request) -> UnitOfWork:
    return UnitOfWork(transactions_of(request), "read")


async def _write_unit(request: Request) -> UnitOfWork:
    return UnitOfWork(transactions_of(request), "write")


ReadUnit = Annotated[UnitOfWork, Depends(_read_unit)]
WriteUnit = Annotated[UnitOfWork, Depends(_write_unit)]
