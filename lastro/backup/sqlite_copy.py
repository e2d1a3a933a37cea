"""A consistent copy of a live SQLite database, and the checks a copy must pass before it is trusted.

`snapshot` copies with SQLite's online backup API in ONE step (`pages=-1`): the whole copy is read inside
one read transaction, so it is the database as of one commit, while the workers go on writing into the
WAL (a reader never blocks a WAL writer). The API's usual form, a few pages per step, restarts from the
first page whenever another connection writes between two steps, so under a steady write load it may
never finish; one step cannot be restarted. `VACUUM INTO` reads one snapshot too, but rebuilds every
table and index into the copy: as fast up to 2.3 times slower for 100,000 orders (39 MiB: 0.19-0.22 s
for the backup API, 0.19-0.51 s for VACUUM INTO; benchmarks/RESULTS.md, "Backups"), and its cost grows
with the indexes, while a page copy's only grows with the file. What the copy costs the writers is the
WAL growing while it reads, since no checkpoint can pass the copy's snapshot; it is checkpointed as usual
afterwards. The checks that follow read the copy, not the live database.

The copy is switched to `journal_mode=DELETE` (a single file that needs no -wal/-shm beside it), then
must pass `PRAGMA integrity_check` before it is kept.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lastro.backup.manifest import BackupError
from lastro.db import sqlite

__all__ = ["SnapshotFacts", "check_copy", "snapshot"]

_BUSY_TIMEOUT_MS = 10_000


class SnapshotFacts:
    """What a checked copy says about itself: its schema revision and its row count per table."""

    def __init__(self, revision: str | None, tables: dict[str, int]) -> None:
        self.revision, self.tables = revision, tables


def _open(path: Path, mode: str) -> Any:
    uri = f"file:{quote(str(path.resolve()))}?mode={mode}"
    connection = sqlite.driver().connect(uri, uri=True, timeout=_BUSY_TIMEOUT_MS / 1000)
    connection.isolation_level = None
    connection.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    return connection


def snapshot(source: Path, destination: Path) -> float:
    """Copy the live database `source` into the new file `destination`; the seconds the copy read for."""
    if not source.is_file():
        raise BackupError(f"the SQLite database {source} does not exist")
    try:
        reader = _open(source, "rw")
    except Exception as error:
        raise BackupError(f"cannot open the SQLite database {source}: {error}") from None
    try:
        writer = _open(destination, "rwc")
        try:
            started = time.monotonic()
            reader.backup(writer, pages=-1)
            seconds = time.monotonic() - started
            writer.execute("PRAGMA journal_mode=DELETE")
        finally:
            writer.close()
    except BackupError:
        raise
    except Exception as error:
        raise BackupError(f"copying {source} failed: {_reason(error)}") from None
    finally:
        reader.close()
    return seconds


def check_copy(path: Path, *, count_rows: bool = True) -> SnapshotFacts:
    """`PRAGMA integrity_check` on a copy, then its schema revision and (optionally) row counts."""
    try:
        connection = _open(path, "ro")
    except Exception as error:
        raise BackupError(f"{path} cannot be opened as a SQLite database: {_reason(error)}") from None
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
        problems = [str(row[0]) for row in rows if row[0] != "ok"]
        if problems:
            raise BackupError(f"{path} fails PRAGMA integrity_check: {problems[0]}")
        names = [
            str(row[0])
            for row in connection.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name"
            )
        ]
        revision = None
        if "alembic_version" in names:
            found = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = None if found is None else str(found[0])
        tables = {}
        if count_rows:
            for name in names:
                quoted = name.replace('"', '""')
                tables[name] = int(connection.execute(f'SELECT count(*) FROM "{quoted}"').fetchone()[0])
        return SnapshotFacts(revision, tables)
    except BackupError:
        raise
    except Exception as error:
        raise BackupError(f"{path} is not a sound SQLite database: {_reason(error)}") from None
    finally:
        connection.close()


def checkpoint(path: Path) -> None:
    """Fold a database's WAL into its main file (after a crash the WAL may hold its last commits)."""
    connection = _open(path, "rw")
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("PRAGMA journal_mode=DELETE")
    finally:
        connection.close()


def _reason(error: Exception) -> str:
    errno_name = getattr(error, "sqlite_errorname", None)
    text = " ".join(str(error).split())
    return f"{text} ({errno_name})" if errno_name else text
