"""Where backups live: one directory per backup, named by its UTC time, published by a rename.

A backup is a directory, not a tar: every file in it can be checked and restored in place, without
unpacking a second copy first, and `rsync`/object-storage tools copy it as they find it. It is built in
`BACKUP_DIR/.tmp-lastro-backup-<random>` and renamed to `BACKUP_DIR/lastro-backup-<YYYYMMDDTHHMMSSZ>`
only once complete and synced, so a directory with the final name is always a whole backup; what a crash
leaves is a `.tmp-` directory, which listing ignores and pruning removes once it is a day old.
"""

from __future__ import annotations

import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lastro.backup.manifest import MANIFEST, BackupError, fsync_directory

__all__ = [
    "PREFIX",
    "TEMPORARY_PREFIX",
    "StoredBackup",
    "list_backups",
    "new_temporary",
    "newest_backup",
    "publish",
]

PREFIX = "lastro-backup-"
TEMPORARY_PREFIX = ".tmp-lastro-backup-"
_NAME = re.compile(r"^lastro-backup-(\d{8}T\d{6}Z)(?:-(\d+))?$")
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class StoredBackup:
    path: Path
    created: datetime  # from the name: what retention sorts and ages by

    @property
    def complete(self) -> bool:
        """Whether its manifest is there: the last file written before the rename that published it."""
        return (self.path / MANIFEST).is_file()


def name_for(moment: datetime) -> str:
    return PREFIX + moment.astimezone(UTC).strftime(_STAMP)


def parse_name(name: str) -> datetime | None:
    found = _NAME.match(name)
    if found is None:
        return None
    return datetime.strptime(found.group(1), _STAMP).replace(tzinfo=UTC)


def list_backups(directory: Path) -> list[StoredBackup]:
    """The backups lastro made in `directory` (by name), oldest first; nothing else found there."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        created = parse_name(path.name)
        if created is not None and path.is_dir() and not path.is_symlink():
            found.append(StoredBackup(path, created))
    return sorted(found, key=lambda backup: (backup.created, _sequence(backup.path.name)))


def _sequence(name: str) -> int:
    found = _NAME.match(name)
    return int(found.group(2) or 0) if found else 0


def newest_backup(directory: Path) -> Path:
    """The newest complete backup in `directory`; `BackupError` when there is none."""
    complete = [backup for backup in list_backups(directory) if backup.complete]
    if not complete:
        raise BackupError(f"no backup in {directory}: make one with `lastro backup`, or name one")
    return complete[-1].path


def new_temporary(directory: Path) -> Path:
    """A new, empty temporary directory in `directory` (created, with its parents)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        temporary = directory / (TEMPORARY_PREFIX + secrets.token_hex(6))
        temporary.mkdir()
    except OSError as error:
        raise BackupError(f"cannot write into BACKUP_DIR {directory}: {error.strerror or error}") from None
    return temporary


def publish(temporary: Path, moment: datetime) -> Path:
    """Rename the finished `temporary` to its final name (a second backup in the same second gets `-1`)."""
    directory = temporary.parent
    base = name_for(moment)
    for sequence in range(1000):
        target = directory / (base if sequence == 0 else f"{base}-{sequence}")
        if target.exists():
            continue
        try:
            temporary.rename(target)
        except FileExistsError:
            continue
        except OSError as error:
            if target.exists():  # a directory made meanwhile under this name (rename fails on non-empty)
                continue
            raise BackupError(
                f"cannot publish the backup in {directory}: {error.strerror or error}"
            ) from None
        fsync_directory(directory)
        return target
    raise BackupError(f"too many backups named {base} in {directory}")


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
