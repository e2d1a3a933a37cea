"""`restore_backup(path, settings)`: put a verified backup back as `DATABASE_URL` and `BACKUP_PATHS`.

The backup is verified first. A database that is being served is never overwritten, `force` or not:

- SQLite: restore takes the serving mark (`lastro.db.serving`) exclusively without waiting, which fails
  while any `lastro serve` supervisor or worker of the file runs, and holds it until done, so a service
  starting meanwhile waits for the swap. The copy is written beside the database, checked with
  `PRAGMA integrity_check`, synced, and renamed over it. The previous database, its WAL folded in first
  (after a crash the WAL holds its last commits), is kept as `<name>.before-restore-<stamp>`, so a restore
  can itself be undone; no stale `-wal`/`-shm` of the old file is left for the new one to read.
- PostgreSQL: see `lastro.backup.postgres_dump` (a fresh database swapped in by renames, refused while
  another session is connected to the database).

`force` only allows replacing a database (or a directory of `BACKUP_PATHS`) that exists.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lastro.backup import postgres_dump, sqlite_copy
from lastro.backup.manifest import BackupError, Manifest, fsync_directory, fsync_file
from lastro.backup.paths import restore_path
from lastro.backup.verify import verify_backup
from lastro.db.serving import ServingMark, sqlite_file
from lastro.settings import Settings, is_sqlite_url

__all__ = ["RestoreResult", "restore_backup"]

SERVED = "stop the service first; --force does not override this"


@dataclass
class RestoreResult:
    database: str
    previous: str | None = None
    paths: dict[str, str | None] = field(default_factory=dict)  # restored directory -> previous one kept


def restore_backup(path: Path, settings: Settings, *, force: bool = False) -> RestoreResult:
    manifest = verify_backup(path)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    wants_sqlite = is_sqlite_url(settings.DATABASE_URL)
    if wants_sqlite != (manifest.database_kind == "sqlite"):
        raise BackupError(
            f"{path} holds a {manifest.database_kind} database and DATABASE_URL is "
            f"{'SQLite' if wants_sqlite else 'PostgreSQL'}: restore it into a database of the same kind"
        )
    if wants_sqlite:
        result = _restore_sqlite(path, manifest, settings, stamp, force)
    else:
        result = _restore_postgres(path, manifest, settings, stamp, force)
    for name, source in manifest.paths.items():
        previous = restore_path(path, name, Path(source), manifest.files, stamp)
        result.paths[source] = str(previous) if previous.exists() else None
    return result


def _check_paths(manifest: Manifest, force: bool) -> None:
    for source in manifest.paths.values():
        if Path(source).exists() and not force:
            raise BackupError(f"{source} exists: restore with --force to replace it (it is kept)")


def _restore_sqlite(
    path: Path, manifest: Manifest, settings: Settings, stamp: str, force: bool
) -> RestoreResult:
    target = sqlite_file(settings.DATABASE_URL)
    if target is None:
        raise BackupError("DATABASE_URL names an in-memory SQLite database: there is no file to restore into")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        mark = ServingMark(target)
        free = mark.try_exclusive()
    except OSError as error:
        raise BackupError(f"cannot restore into {target.parent}: {error.strerror or error}") from None
    try:
        if not free:
            raise BackupError(f"the database {target} is being served by lastro: {SERVED}")
        if target.exists() and not force:
            raise BackupError(f"{target} exists: restore with --force to replace it (it is kept)")
        _check_paths(manifest, force)
        staging = target.with_name(f"{target.name}.restore-{secrets.token_hex(4)}")
        try:
            shutil.copyfile(path / manifest.database_file, staging)
            sqlite_copy.check_copy(staging, count_rows=False)
            fsync_file(staging)
            previous = _set_aside(target, stamp)
            try:
                os.replace(staging, target)
            except OSError:
                if previous is not None:  # put the previous database back where it was
                    os.replace(previous, target)
                raise
            fsync_directory(target.parent)
        except OSError as error:
            raise BackupError(f"cannot restore {target}: {error.strerror or error}") from None
        finally:
            staging.unlink(missing_ok=True)
    finally:
        mark.release()
    return RestoreResult(str(target), None if previous is None else str(previous))


def _set_aside(target: Path, stamp: str) -> Path | None:
    """Move the current database (with its WAL folded in) out of the way; its new path, or None."""
    wal, shm = (target.with_name(target.name + suffix) for suffix in ("-wal", "-shm"))
    if not target.exists():
        for leftover in (wal, shm):  # never read by the restored file as if they were its own
            leftover.unlink(missing_ok=True)
        return None
    if wal.exists():
        try:
            sqlite_copy.checkpoint(target)
        except Exception as error:
            raise BackupError(
                f"cannot fold the WAL of {target} into it before setting it aside: {error}"
            ) from None
    previous = target.with_name(f"{target.name}.before-restore-{stamp}")
    os.replace(target, previous)
    for suffix, leftover in (("-wal", wal), ("-shm", shm)):
        if leftover.exists():  # still there only if the checkpoint could not remove it: keep it with its file
            os.replace(leftover, previous.with_name(previous.name + suffix))
    return previous


def _restore_postgres(
    path: Path, manifest: Manifest, settings: Settings, stamp: str, force: bool
) -> RestoreResult:
    import psycopg

    from lastro.db.engine import normalize_url, safe_url

    url = normalize_url(settings.DATABASE_URL)
    target = str(url.database)
    admin_args: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": "postgres",
        "application_name": postgres_dump.APPLICATION,
        "connect_timeout": 10,
    }
    try:
        with psycopg.connect(
            **{k: v for k, v in admin_args.items() if v is not None}, autocommit=True
        ) as admin:
            others = postgres_dump.sessions_on(admin, target)
            if others:
                raise BackupError(
                    f"the database {target} is being served "
                    f"({', '.join(sorted(set(others)))} connected): {SERVED}"
                )
            _check_paths(manifest, force)
            previous = postgres_dump.restore_dump(
                url, path / manifest.database_file, admin, stamp, replace=force
            )
    except psycopg.Error as error:
        raise BackupError(f"restoring into {safe_url(url)} failed: {' '.join(str(error).split())}") from None
    return RestoreResult(safe_url(url), previous)
