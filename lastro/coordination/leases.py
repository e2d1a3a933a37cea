"""Named leases: one holder at a time, for `ttl` seconds unless renewed.

`SqlLeases` keeps them as rows of `lastro_leases` in the service's own database (SQLite or PostgreSQL).
Taking or renewing a lease is one conditional upsert: the row is written only when it is missing, expired,
or already ours, and `RETURNING` tells whether it was. It runs as a unit of work through
`Transactions.write`, so on SQLite it goes through the worker's writer and the file write lock (never
"database is locked"), and on PostgreSQL through the bounded units with retry.

Expiry is compared with each worker's own clock (injected; `time.time` by default): machines that share a
lease must keep their clocks in step (NTP), and a lease's `ttl` must be far longer than their drift.
A lease is a hint of who should work, never the guard of correctness: what must happen once is guarded by
a unique row (a job's run), so two holders during a handover never run the same period twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Connection, delete
from sqlalchemy.dialects import postgresql, sqlite

from lastro.coordination.tables import leases
from lastro.db.transactions import Transactions

__all__ = ["Leases", "SqlLeases"]


class Leases(Protocol):
    async def acquire(self, name: str, holder: str, ttl: float) -> bool:
        """Take the lease if it is free, expired or `holder`'s own; whether `holder` has it now."""

    async def renew(self, name: str, holder: str, ttl: float) -> bool:
        """Extend `holder`'s lease by `ttl` from now; False if it expired and someone else took it."""

    async def release(self, name: str, holder: str) -> bool:
        """Give the lease up now if `holder` has it, so that another holder need not wait for its expiry."""

    async def close(self) -> None:
        """Let go of what the leases hold open (a connection pool)."""


class SqlLeases:
    """Leases as rows of `lastro_leases`, written through the service's units of work."""

    def __init__(self, transactions: Transactions, *, clock: Callable[[], float] = time.time) -> None:
        self.transactions = transactions
        self.clock = clock
        self._insert = postgresql.insert if not transactions.database.is_sqlite else sqlite.insert

    async def acquire(self, name: str, holder: str, ttl: float) -> bool:
        return await self.transactions.write(self._take, name, holder, ttl, self.clock())

    async def renew(self, name: str, holder: str, ttl: float) -> bool:
        # Renewing is taking again: a lease that expired but nobody took is still ours to keep.
        return await self.acquire(name, holder, ttl)

    async def release(self, name: str, holder: str) -> bool:
        return await self.transactions.write(self._release, name, holder)

    async def close(self) -> None:
        """Nothing to close: the service's database outlives the leases."""

    def _take(self, connection: Connection, name: str, holder: str, ttl: float, now: float) -> bool:
        insert = self._insert(leases).values(name=name, holder=holder, expires_at=now + ttl)
        statement = insert.on_conflict_do_update(
            index_elements=[leases.c.name],
            set_={"holder": holder, "expires_at": now + ttl},
            where=(leases.c.expires_at < now) | (leases.c.holder == holder),
        ).returning(leases.c.holder)
        return connection.execute(statement).scalar_one_or_none() == holder

    @staticmethod
    def _release(connection: Connection, name: str, holder: str) -> bool:
        statement = delete(leases).where(leases.c.name == name, leases.c.holder == holder)
        return bool(connection.execute(statement).rowcount)
