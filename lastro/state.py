"""`ServiceState`: everything a running service owns, in one object at `app.state.lastro`.

`state.transactions` is what code outside a request (the application's lifespan, background jobs) runs
units of work with: `await state.transactions.write(repo.purge, cutoff)`. It is not optional: before
start-up has opened the database (or when it could not), it raises `ServiceUnavailable`, which a request
answers with a 503. `state.jobs` (`lastro.coordination.jobs.Jobs`) is there from start-up on too, for the
application's lifespan to declare its periodic jobs in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lastro.db.engine import Database
from lastro.db.transactions import Transactions
from lastro.disk import DiskWatch
from lastro.errors import ServiceUnavailable
from lastro.health import HealthRegistry
from lastro.observability.metrics import Metrics
from lastro.settings import Settings
from lastro.tasks import BackgroundTasks

if TYPE_CHECKING:
    from lastro.coordination.events import Broadcast
    from lastro.coordination.jobs import Jobs
    from lastro.db.serving import ServingMark
    from lastro.observability.tracing import Tracing
    from lastro.rate_limits import Identify, RateLimits

__all__ = ["ServiceState"]


@dataclass
class ServiceState:
    settings: Settings
    health: HealthRegistry
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    database: Database | None = None
    disk: DiskWatch | None = None  # free space and a recent "disk full", from start-up on
    rate_limits: RateLimits | None = None  # from start-up on
    identify: Identify | None = None  # who the caller is, for per-user rate limits
    metrics: Metrics | None = None  # from start-up on
    broadcast: Broadcast | None = None  # from start-up on: publish and subscribe across every worker
    tracing: Tracing | None = None  # the spans, with TRACING on; its provider lives from start-up to shutdown
    serving: ServingMark | None = None  # SQLite: held from start-up to shutdown, see lastro.db.serving
    started_at: float = field(default_factory=time.time)
    _transactions: Transactions | None = field(default=None, init=False, repr=False)
    _jobs: Jobs | None = field(default=None, init=False, repr=False)

    @property
    def transactions(self) -> Transactions:
        """The service's units of work, read-only or read-write, with retry and the circuit breaker."""
        if self._transactions is None:
            raise ServiceUnavailable("the database is not open yet")
        return self._transactions

    @transactions.setter
    def transactions(self, transactions: Transactions) -> None:
        self._transactions = transactions

    @property
    def jobs(self) -> Jobs:
        """The periodic jobs, run once per period across all workers: `state.jobs.add(name, fn, every=60)`."""
        if self._jobs is None:
            raise ServiceUnavailable("the periodic jobs start with the service")
        return self._jobs

    @jobs.setter
    def jobs(self, jobs: Jobs) -> None:
        self._jobs = jobs

    @property
    def is_open(self) -> bool:
        """Whether start-up has opened the database, so that `transactions` answers."""
        return self._transactions is not None
