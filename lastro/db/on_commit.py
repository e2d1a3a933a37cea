"""`on_commit(connection, callback)`: run `callback` once the write unit's transaction has committed.

```python
def work(connection: Connection) -> Order:
    order = queries.create_order(connection, tenant_id, body)
    lastro.on_commit(connection, lambda: audit.record(order))  # sync or async
    return order

order = await unit.run(work)  # the callbacks have run by the time this returns
```

The callbacks of a unit run on the event loop, in the order they were registered, after its `COMMIT` and
before `unit.run` returns. A unit that raises, or whose attempt is rolled back and run again (a retry, a
batch of SQLite units that fell apart), runs only the callbacks of the attempt that committed. When a
callback raises, the others still run, then the first error propagates to the caller, who should know
that the write itself committed.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy import Connection

__all__ = ["OnCommit", "Staged", "on_commit"]

T = TypeVar("T")
OnCommit = Callable[[], Awaitable[object] | object]

_KEY = "lastro.on_commit"  # in the DBAPI connection's `info`, only while a write unit runs on it


def on_commit(connection: Connection, callback: OnCommit) -> None:
    """Run `callback()` (a function or a coroutine function) once this write unit has committed."""
    callbacks: list[OnCommit] | None = connection.info.get(_KEY)
    if callbacks is None:
        raise RuntimeError(
            "on_commit() needs the connection of a write unit (`unit.run` of a lastro.WriteUnit, or "
            "`transactions.write`)"
        )
    callbacks.append(callback)


class Staged(Generic[T]):
    """A write unit's `work` that collects the `on_commit` callbacks of its latest attempt."""

    __slots__ = ("callbacks", "work")

    def __init__(self, work: Callable[[Connection], T]) -> None:
        self.work = work
        self.callbacks: list[OnCommit] = []

    def __call__(self, connection: Connection) -> T:
        callbacks: list[OnCommit] = []
        self.callbacks = callbacks  # a new attempt: what a rolled-back one registered is void
        info = connection.info  # the pooled DBAPI connection's: cleared before it serves anything else
        info[_KEY] = callbacks
        try:
            return self.work(connection)
        finally:
            del info[_KEY]

    async def run_callbacks(self) -> None:
        """After the commit: every callback, in order; then the first error, if any."""
        first: BaseException | None = None
        for callback in self.callbacks:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception as error:
                first = first or error
        if first is not None:
            raise first
