"""`create_backup(settings)`: the database and `BACKUP_PATHS` into a new backup directory, or nothing.

Everything is written into a temporary directory of `BACKUP_DIR` (see `lastro.backup.store`): the database
copy (`database.sqlite`, checked with `PRAGMA integrity_check`) or dump (`database.dump`, read back with
`pg_restore --list`), the stored files, then the manifest, each synced; then one rename publishes it. Any
failure (a full disk, an unwritable directory, a copy that fails its check) removes the temporary
directory and raises `BackupError` with one line: there is never a half backup under a backup's name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lastro._version import __version__
from lastro.backup import postgres_dump, sqlite_copy, store
from lastro.backup.manifest import BackupError, FileEntry, Manifest, fsync_directory, fsync_file, sha256_of
from lastro.backup.paths import copy_paths
from lastro.db.serving import sqlite_file
from lastro.settings import Settings, is_sqlite_url

if TYPE_CHECKING:
    from lastro.db.engine import Database

__all__ = ["BackupResult", "create_backup"]

Clock = Callable[[], datetime]
SQLITE_FILE = "database.sqlite"
DUMP_FILE = "database.dump"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: Manifest
    seconds: float

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.manifest.files)


def create_backup(settings: Settings, output: Path | None = None, *, clock: Clock = utc_now) -> BackupResult:
    """Back up `settings.DATABASE_URL` and `settings.BACKUP_PATHS` into `output` (default `BACKUP_DIR`)."""
    directory = output if output is not None else settings.BACKUP_DIR
    moment = clock()
    started = time.monotonic()
    temporary = store.new_temporary(directory)
    try:
        if is_sqlite_url(settings.DATABASE_URL):
            kind, database_file, revision, tables = _sqlite(settings, temporary)
        else:
            kind, database_file, revision, tables = _postgres(settings, temporary)
        copy = temporary / database_file
        entries = [FileEntry(database_file, copy.stat().st_size, sha256_of(copy))]
        paths, copied = copy_paths(list(settings.BACKUP_PATHS), temporary)
        manifest = Manifest(
            lastro_version=__version__,
            created_at=moment.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            database_kind=kind,
            database_file=database_file,
            schema_revision=revision,
            tables=tables,
            files=entries + copied,
            paths=paths,
            duration_s=round(time.monotonic() - started, 3),
        )
        manifest.write(temporary)
        fsync_directory(temporary)
        published = store.publish(temporary, moment)
    except OSError as error:
        store.discard(temporary)
        raise BackupError(f"cannot write the backup into {directory}: {error.strerror or error}") from None
    except BaseException:
        store.discard(temporary)
        raise
    return BackupResult(published, manifest, time.monotonic() - started)


def _sqlite(settings: Settings, temporary: Path) -> tuple[str, str, str | None, dict[str, int]]:
    source = sqlite_file(settings.DATABASE_URL)
    if source is None:
        raise BackupError("DATABASE_URL names an in-memory SQLite database: there is no file to back up")
    copy = temporary / SQLITE_FILE
    sqlite_copy.snapshot(source, copy)
    facts = sqlite_copy.check_copy(copy)
    fsync_file(copy)
    return "sqlite", SQLITE_FILE, facts.revision, facts.tables


def _postgres(settings: Settings, temporary: Path) -> tuple[str, str, str | None, dict[str, int]]:
    from lastro.db.engine import Database

    database = Database(settings.DATABASE_URL)
    try:
        try:
            version = database.server_version()
            revision = _revision(database)
        except BackupError:
            raise
        except Exception as error:
            raise BackupError(f"cannot read {database.display_url}: {' '.join(str(error).split())}") from None
        postgres_dump.dump(database.url, version, temporary / DUMP_FILE)
    finally:
        database.dispose()
    postgres_dump.list_dump(temporary / DUMP_FILE)
    fsync_file(temporary / DUMP_FILE)
    return "postgresql", DUMP_FILE, revision, {}


def _revision(database: Database) -> str | None:
    from sqlalchemy import inspect, text

    with database.engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if found is None else str(found)
