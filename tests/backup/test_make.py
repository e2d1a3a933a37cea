"""`create_backup`: a checked copy, the stored files and a manifest, published whole or not at all."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lastro.backup import BackupError, create_backup, verify_backup
from lastro.backup.manifest import sha256_of
from lastro.db import sqlite
from lastro.settings import Settings, load_settings
from tests.support.tmpfs import fill, tmpfs


def test_a_backup_is_a_directory_named_by_its_utc_time(settings: Settings) -> None:
    """The backup goes to BACKUP_DIR/lastro-backup-<YYYYMMDDTHHMMSSZ>, with no temporary left beside."""
    moment = datetime(2026, 12, 5, 3, 0, 7, tzinfo=UTC)
    result = create_backup(settings, clock=lambda: moment)
    assert result.path == settings.BACKUP_DIR / "lastro-backup-20261205T030007Z"
    assert os.listdir(settings.BACKUP_DIR) == [result.path.name]


def test_a_second_backup_in_the_same_second_gets_its_own_name(settings: Settings) -> None:
    """Two backups stamped with the same second are both kept: the second is named `...Z-1`."""
    moment = datetime(2026, 12, 5, 3, 0, 7, tzinfo=UTC)
    first = create_backup(settings, clock=lambda: moment)
    second = create_backup(settings, clock=lambda: moment)
    assert second.path.name == first.path.name + "-1"


def test_the_manifest_lists_every_file_with_its_checksum(settings: Settings, images: Path) -> None:
    """manifest.json records the format, versions, the database kind, the schema revision, the row counts,
    and each file (database copy and stored images) with its size and SHA-256."""
    result = create_backup(settings)
    document = json.loads((result.path / "manifest.json").read_text())
    assert document["format"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", document["created_at"])
    assert (document["database_kind"], document["schema_revision"]) == ("sqlite", "0004")
    assert document["tables"] == {"alembic_version": 1, "notes": 50}
    assert document["paths"] == {"images": str(images.resolve())}
    listed = {entry["path"]: entry for entry in document["files"]}
    assert set(listed) == {"database.sqlite", "files/images/a.png", "files/images/2026/b.jpg"}
    for name, entry in listed.items():
        assert entry["size"] == (result.path / name).stat().st_size
        assert entry["sha256"] == sha256_of(result.path / name)


def test_the_copy_is_a_single_file_that_passes_its_checks(settings: Settings) -> None:
    """The database copy needs no -wal/-shm beside it and passes verify."""
    result = create_backup(settings)
    assert sorted(path.name for path in result.path.iterdir()) == [
        "database.sqlite",
        "files",
        "manifest.json",
    ]
    verify_backup(result.path)


def test_writes_committed_in_the_wal_are_in_the_copy(settings: Settings, database: Path) -> None:
    """Rows still in the WAL (not checkpointed) of a database held open are part of the snapshot."""
    holder = sqlite.driver().connect(str(database))  # keeps the WAL from being folded in at close
    holder.execute("SELECT count(*) FROM notes").fetchone()
    writer = sqlite.driver().connect(str(database))
    writer.execute("INSERT INTO notes (body) VALUES ('in the wal')")
    writer.commit()
    writer.close()
    assert database.with_name("app.db-wal").stat().st_size > 0
    result = create_backup(settings)
    holder.close()
    assert result.manifest.tables["notes"] == 51


def test_a_missing_backup_path_is_one_error_and_no_backup(settings: Settings, tmp_path: Path) -> None:
    """A BACKUP_PATHS entry that is not a directory fails the backup and leaves nothing in BACKUP_DIR."""
    broken = load_settings(
        DATABASE_URL=settings.DATABASE_URL,
        BACKUP_DIR=settings.BACKUP_DIR,
        BACKUP_PATHS=[tmp_path / "nowhere"],
    )
    with pytest.raises(BackupError, match=r"BACKUP_PATHS names .*nowhere, which is not a directory"):
        create_backup(broken)
    assert os.listdir(settings.BACKUP_DIR) == []


def test_a_full_disk_leaves_no_half_backup(settings: Settings, tmp_path: Path) -> None:
    """With BACKUP_DIR on a full filesystem the backup fails with one line and leaves nothing behind."""
    with tmpfs(tmp_path / "small", 1) as small:
        fill(small)
        with pytest.raises(BackupError) as raised:
            create_backup(settings, small / "backups")
        assert "\n" not in str(raised.value)
        assert "No space left on device" in str(raised.value) or "disk is full" in str(raised.value)
        assert os.listdir(small / "backups") == []


def test_a_disk_that_fills_during_the_copy_leaves_no_half_backup(settings: Settings, tmp_path: Path) -> None:
    """A filesystem with room for the start of the copy but not its end: one error, no directory left."""
    big = load_settings(DATABASE_URL=f"sqlite:///{tmp_path / 'big.db'}")
    connection = sqlite.driver().connect(str(tmp_path / "big.db"))
    connection.execute("CREATE TABLE blobs (data BLOB)")
    connection.executemany("INSERT INTO blobs VALUES (randomblob(65536))", [()] * 48)  # 3 MiB
    connection.commit()
    connection.close()
    with tmpfs(tmp_path / "small", 2) as small:
        with pytest.raises(BackupError, match=r"full|space"):
            create_backup(big, small)
        assert list(small.iterdir()) == []
