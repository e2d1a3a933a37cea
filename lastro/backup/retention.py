"""`prune(directory, keep, max_age_days)`: remove old backups, never the newest good one.

A backup goes when it is beyond the `keep` newest OR older than `max_age_days`, except the newest complete
one (a service that stopped backing up for a month still has its last backup). Only directories named
as lastro names backups are considered (`lastro.backup.store`), so nothing else in the directory is ever
touched; temporary directories a crash left behind go once they are a day old.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lastro.backup.store import TEMPORARY_PREFIX, list_backups

__all__ = ["prune"]

_STALE_TEMPORARY = timedelta(days=1)


def prune(
    directory: Path,
    keep: int,
    max_age_days: float,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[Path]:
    """Remove the backups retention no longer keeps; the paths removed, oldest first."""
    moment = now()
    backups = list_backups(directory)
    complete = [backup for backup in backups if backup.complete]
    newest_good = complete[-1].path if complete else None
    cutoff = moment - timedelta(days=max_age_days)
    kept_by_count = {backup.path for backup in complete[-keep:]} if keep > 0 else set()
    removed = []
    for backup in backups:
        if backup.path == newest_good:
            continue
        too_many = backup.path not in kept_by_count
        too_old = backup.created < cutoff
        if too_many or too_old:
            shutil.rmtree(backup.path, ignore_errors=True)
            removed.append(backup.path)
    removed += _stale_temporaries(directory, moment)
    return removed


def _stale_temporaries(directory: Path, moment: datetime) -> list[Path]:
    if not directory.is_dir():
        return []
    removed = []
    for path in directory.glob(TEMPORARY_PREFIX + "*"):
        try:
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except OSError:
            continue
        if path.is_dir() and not path.is_symlink() and moment - modified > _STALE_TEMPORARY:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
