"""What every check reads: the settings, the machine, where the deploy files are, and what follows from
them (the worker count `lastro serve` would start, the SQLite file)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lastro.db.engine import normalize_url
from lastro.ops.doctor.machine import Machine
from lastro.settings import Settings, is_sqlite_url
from lastro.workers import resolve_workers

__all__ = ["Context", "existing"]


@dataclass(frozen=True)
class Context:
    settings: Settings
    machine: Machine
    deploy_dir: Path

    @property
    def workers(self) -> int:
        """The count `lastro serve` starts here: `WORKERS`, or `auto` over `os.cpu_count()`."""
        return resolve_workers(self.settings.WORKERS, self.settings.DATABASE_URL, self.machine.cpu_count)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite_url(self.settings.DATABASE_URL)

    @property
    def database_path(self) -> Path | None:
        """The SQLite file (it may not exist yet), or None for PostgreSQL and in-memory databases."""
        if not self.is_sqlite:
            return None
        database = normalize_url(self.settings.DATABASE_URL).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database).absolute()


def existing(path: Path) -> Path:
    """`path`, or its nearest ancestor that exists: where a file not created yet will be."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path
