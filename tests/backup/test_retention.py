"""Retention: beyond BACKUP_KEEP or older than BACKUP_MAX_AGE_DAYS goes, never the newest good backup,
never anything lastro did not make."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lastro.backup import create_backup, prune
from lastro.backup.store import list_backups
from lastro.settings import Settings

START = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def backups_on_days(settings: Settings, days: int) -> list[Path]:
    """One backup a day from START, made with the clock injected."""
    return [
        create_backup(settings, clock=lambda day=day: START + timedelta(days=day)).path for day in range(days)
    ]


def names(directory: Path) -> list[str]:
    return [backup.path.name for backup in list_backups(directory)]


def test_beyond_the_count_the_oldest_go(settings: Settings) -> None:
    """With keep=3 and no backup too old, the 3 newest of 5 stay."""
    made = backups_on_days(settings, 5)
    removed = prune(settings.BACKUP_DIR, 3, 30, now=lambda: START + timedelta(days=5))
    assert removed == made[:2]
    assert names(settings.BACKUP_DIR) == [path.name for path in made[2:]]


def test_older_than_the_age_go_even_within_the_count(settings: Settings) -> None:
    """With keep=10 and a 2-day age, backups older than 2 days go."""
    made = backups_on_days(settings, 5)
    prune(settings.BACKUP_DIR, 10, 2, now=lambda: START + timedelta(days=4, hours=1))
    assert names(settings.BACKUP_DIR) == [path.name for path in made[3:]]


def test_the_newest_good_backup_is_never_removed(settings: Settings) -> None:
    """A month without backups: every backup is too old, and the newest one stays anyway."""
    made = backups_on_days(settings, 3)
    prune(settings.BACKUP_DIR, 7, 7, now=lambda: START + timedelta(days=40))
    assert names(settings.BACKUP_DIR) == [made[-1].name]


def test_a_newer_incomplete_backup_does_not_count_as_the_newest_good_one(settings: Settings) -> None:
    """A directory named like a backup but without manifest never shields... nor replaces the newest good."""
    made = backups_on_days(settings, 2)
    (made[1] / "manifest.json").unlink()
    prune(settings.BACKUP_DIR, 7, 7, now=lambda: START + timedelta(days=40))
    assert names(settings.BACKUP_DIR) == [made[0].name]


def test_files_lastro_did_not_make_are_never_touched(settings: Settings) -> None:
    """Other files and directories in BACKUP_DIR stay, whatever their age."""
    backups_on_days(settings, 3)
    foreign = [
        settings.BACKUP_DIR / "notes.txt",
        settings.BACKUP_DIR / "lastro-backup-manual",
        settings.BACKUP_DIR / "db.tar",
    ]
    foreign[0].write_text("mine")
    foreign[1].mkdir()
    foreign[2].write_bytes(b"tar")
    prune(settings.BACKUP_DIR, 1, 1, now=lambda: START + timedelta(days=400))
    assert all(path.exists() for path in foreign)


def test_a_temporary_directory_a_crash_left_goes_once_a_day_old(settings: Settings) -> None:
    """A `.tmp-lastro-backup-*` directory is removed only when it is over a day old (one still being
    written by another backup is recent)."""
    backups_on_days(settings, 1)
    stale, fresh = (
        settings.BACKUP_DIR / ".tmp-lastro-backup-old",
        settings.BACKUP_DIR / ".tmp-lastro-backup-new",
    )
    stale.mkdir()
    fresh.mkdir()
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    prune(settings.BACKUP_DIR, 7, 7)
    assert (stale.exists(), fresh.exists()) == (False, True)
