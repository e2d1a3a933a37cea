"""Worker processes: how many `WORKERS=auto` starts, how a worker knows it is one, what it does once loaded.

Both sides of the handshake read this module: `lastro serve` (the supervisor) sets the environment a
worker inherits, and a worker's start-up (`lastro.lifecycle`) reads it. It stands at the bottom of the
package, so that loading an application never loads the server.

Each worker is one event loop on one core, so past the core count more workers only add context
switches. SQLite serialises writers, and its readers gain nothing past 3 or 4 processes, so it is capped at
4. Two workers is the floor everywhere: one can be recycled or replaced while the other serves.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Literal

from lastro.settings import is_sqlite_url

__all__ = [
    "MIN_WORKERS",
    "SCHEMA_CHECKED_ENV",
    "SQLITE_MAX_WORKERS",
    "SUPERVISED_ENV",
    "freeze_long_lived_objects",
    "is_supervised_worker",
    "resolve_workers",
    "schema_checked_for",
]

MIN_WORKERS = 2
SQLITE_MAX_WORKERS = 4
SERVER_MAX_WORKERS = 32
# Set by `lastro serve` for its workers: what the supervisor prepared (the SQLite file) a worker only uses.
SUPERVISED_ENV = "LASTRO_SERVE_WORKER"
SCHEMA_CHECKED_ENV = "LASTRO_SCHEMA_CHECKED"  # the migrations directory the supervisor checked


def is_supervised_worker() -> bool:
    return os.environ.get(SUPERVISED_ENV) == "1"


def schema_checked_for(directory: Path) -> bool:
    """Whether the supervisor has already found the database at the head of `directory`'s migrations."""
    return os.environ.get(SCHEMA_CHECKED_ENV) == str(directory.resolve())


def resolve_workers(workers: int | Literal["auto"], database_url: str, cpu_count: int | None = None) -> int:
    """The worker count for a `WORKERS` setting: the number itself, or the `auto` formula."""
    if workers != "auto":
        return workers
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    ceiling = SQLITE_MAX_WORKERS if is_sqlite_url(database_url) else SERVER_MAX_WORKERS
    return max(MIN_WORKERS, min(cores, ceiling))


def freeze_long_lived_objects() -> None:
    """Move everything alive now out of the garbage collector's reach.

    Modules, routes, settings and pools live as long as the worker: frozen, they are no longer walked by
    every full collection, which showed as p99 spikes under load (benchmarks/RESULTS.md, "Server comparison").
    """
    gc.collect()
    gc.freeze()
