"""`verify_backup(path)`: is this backup whole and restorable?

The manifest must be readable, and every file it lists must be there with its size and SHA-256. The SQLite
copy must pass `PRAGMA integrity_check` and show the schema revision the manifest recorded; a PostgreSQL
dump must be read by `pg_restore --list` and, when the manifest names a revision, hold the data of
`alembic_version`. The first problem found is raised as a one-line `BackupError`.
"""

from __future__ import annotations

from pathlib import Path

from lastro.backup import postgres_dump, sqlite_copy
from lastro.backup.manifest import MANIFEST, BackupError, Manifest, sha256_of

__all__ = ["verify_backup"]


def verify_backup(path: Path) -> Manifest:
    """The backup's manifest once every check passed; `BackupError` naming the first that did not."""
    if not path.is_dir():
        raise BackupError(f"{path} is not a backup directory")
    manifest = Manifest.read(path)
    listed = set()
    for entry in manifest.files:
        listed.add(entry.path)
        file = path / entry.path
        if not file.resolve().is_relative_to(path.resolve()):
            raise BackupError(f"{path / MANIFEST} lists {entry.path}, outside the backup")
        if not file.is_file():
            raise BackupError(f"{file} is missing from the backup")
        if file.stat().st_size != entry.size:
            raise BackupError(f"{file} has {file.stat().st_size} bytes; the manifest says {entry.size}")
        if sha256_of(file) != entry.sha256:
            raise BackupError(f"{file} does not match its SHA-256 in the manifest: it changed")
    if manifest.database_file not in listed:
        raise BackupError(f"{path / MANIFEST} does not list the database file {manifest.database_file}")
    database = path / manifest.database_file
    if manifest.database_kind == "sqlite":
        facts = sqlite_copy.check_copy(database, count_rows=False)
        if facts.revision != manifest.schema_revision:
            raise BackupError(
                f"{database} is at schema revision {facts.revision}; "
                f"the manifest says {manifest.schema_revision}"
            )
    elif manifest.database_kind == "postgresql":
        entries = postgres_dump.list_dump(database)
        if manifest.schema_revision is not None and not any(
            "TABLE DATA" in entry and "alembic_version" in entry for entry in entries
        ):
            raise BackupError(
                f"{database} holds no alembic_version data; the manifest says revision "
                f"{manifest.schema_revision}"
            )
    else:
        raise BackupError(f"{path / MANIFEST} names an unknown database kind {manifest.database_kind!r}")
    return manifest
