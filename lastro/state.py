"""`ServiceState`: everything a running service owns, in one object at `app.state.lastro`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from lastro.db.engine import Database
from lastro.db.transactions import Transactions
from lastro.disk import DiskWatch
from lastro.health import HealthRegistry
from lastro.settings import Settings
from lastro.tasks import BackgroundTasks

__all__ = ["ServiceState"]


@dataclass
class ServiceState:
    settings: Settings
    health: HealthRegistry
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    database: Database | None = None
    transactions: Transactions | None = None
    disk: DiskWatch | None = None  # free space and a recent "disk full", from start-up on
    started_at: float = field(default_factory=time.time)
