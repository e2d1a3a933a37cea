"""How many workers `WORKERS=auto` starts.

Each worker is one event loop on one core, so past the core count more workers only add context
switches. SQLite serialises writers, and its readers gain nothing past 3 or 4 processes, so it is capped at
4. Two workers is the floor everywhere: one can be recycled or replaced while the other serves.
"""

from __future__ import annotations

import os
from typing import Literal

__all__ = ["MIN_WORKERS", "SQLITE_MAX_WORKERS", "SUPERVISED_ENV", "is_supervised_worker", "resolve_workers"]

MIN_WORKERS = 2
SQLITE_MAX_WORKERS = 4
SERVER_MAX_WORKERS = 32
# Set by `lastro serve` for its workers: what the supervisor prepared (the SQLite file) a worker only uses.
SUPERVISED_ENV = "LASTRO_SERVE_WORKER"


def is_supervised_worker() -> bool:
    return os.environ.get(SUPERVISED_ENV) == "1"


def resolve_workers(workers: int | Literal["auto"], database_url: str, cpu_count: int | None = None) -> int:
    """The worker count for a `WORKERS` setting: the number itself, or the `auto` formula."""
    if workers != "auto":
        return workers
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    ceiling = SQLITE_MAX_WORKERS if database_url.startswith("sqlite") else SERVER_MAX_WORKERS
    return max(MIN_WORKERS, min(cores, ceiling))
