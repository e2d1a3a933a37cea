"""`HeldConnections`: a unit thread keeps its PostgreSQL connection for the unit queued behind its own.

Every unit checked a connection out of the pool, switched it to autocommit (`lastro.db.postgres_units`) and
checked it back in, which switched it back: under load, a quarter of the unit threads' time, each check-out
and check-in under the pool's lock (benchmarks/RESULTS.md, "A connection kept while units queue"). A unit
thread that ends a unit while another waits in the queue now keeps its connection, still in autocommit, for
that one.

It hands the connection back as soon as no unit waits, so an idle worker holds none and the pool's own
checks (`lastro.db.ping`'s idle ping, recycling) see every connection that rests; as soon as the pool has
no connection left to give out, so that a check-out from outside the units (a broadcast replay, an operator's
query) waits for one unit at most, never for a thread that keeps its connection; and at the latest `hold`
seconds after it was checked out. It never keeps one that:
- was invalidated, or is still in a transaction;
- a unit changed the execution options of, which would outlive the unit;
- was checked out before the pool reported an invalidation: a restarted server ends every connection, and
  the pool replaces the older ones only as they are checked out again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.pool import QueuePool

__all__ = ["HeldConnections"]


@dataclass(slots=True)
class _Lease:
    connection: Connection
    options: Mapping[str, Any]  # as checked out: a unit that changes them ends the lease
    generation: int
    until: float


class HeldConnections:
    """The connections of `engine`'s pool that unit threads hold, one a thread, in autocommit."""

    def __init__(
        self,
        engine: Engine,
        capacity: int,
        *,
        hold: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`capacity`: the most connections the pool gives out at once (its size and overflow)."""
        if hold < 0:
            raise ValueError(f"hold must be >= 0 seconds, got {hold!r}")
        self.hold = hold
        self.capacity = capacity
        self._engine = engine
        self._clock = clock
        self._local = threading.local()
        self._generation = 0  # one more at each invalidation the pool reports
        self._generation_lock = threading.Lock()
        event.listen(engine.pool, "invalidate", self._invalidated)
        event.listen(engine.pool, "soft_invalidate", self._invalidated)

    def take(self) -> Connection:
        """This thread's connection: the one it kept, if still good, or a new check-out in autocommit."""
        lease: _Lease | None = getattr(self._local, "lease", None)
        if lease is not None:
            if self._current(lease):  # its own state was checked as its last unit ended, in `done`
                return lease.connection
            self.release()
        generation = self._generation  # read first: an invalidation during the check-out ends this lease
        connection = self._engine.connect()
        try:
            # No implicit BEGIN: a read needs none, a write sends its own with its id's read.
            connection.execution_options(isolation_level="AUTOCOMMIT")
        except BaseException:
            connection.close()
            raise
        options = connection.get_execution_options()
        self._local.lease = _Lease(connection, options, generation, self._clock() + self.hold)
        return connection

    def done(self, keep: bool) -> None:
        """The unit on this thread's connection ended: keep the connection if `keep` and still good."""
        lease: _Lease | None = getattr(self._local, "lease", None)
        if lease is not None and not (keep and self._reusable(lease) and self._current(lease)):
            self.release()

    def release(self) -> None:
        """Hand this thread's connection back to the pool, if it holds one."""
        lease: _Lease | None = getattr(self._local, "lease", None)
        if lease is not None:
            self._local.lease = None
            lease.connection.close()

    @staticmethod
    def _reusable(lease: _Lease) -> bool:
        """Whether the unit that just ended left the connection as it was checked out."""
        connection = lease.connection
        return (
            not connection.invalidated
            and not connection.in_transaction()
            and connection.get_execution_options() is lease.options
        )

    def _current(self, lease: _Lease) -> bool:
        """What may change while the connection rests with its thread: the pool, and the clock."""
        return self._spare() and lease.generation == self._generation and self._clock() < lease.until

    def _spare(self) -> bool:
        """Whether whoever checks out next gets a connection without waiting for one to come back."""
        pool = self._engine.pool  # read each time: `dispose()` gives the engine a new pool
        return isinstance(pool, QueuePool) and pool.checkedout() < self.capacity

    def _invalidated(self, *_: Any) -> None:
        with self._generation_lock:  # from any unit thread; read without it
            self._generation += 1
