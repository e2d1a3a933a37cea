"""A small live SQLite database (WAL, an `alembic_version`) and its settings, for the backup tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from lastro.db import sqlite
from lastro.settings import Settings, load_settings


def make_database(path: Path, rows: int = 50) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite.driver().connect(str(path))
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE alembic_version (version_num TEXT NOT NULL)")
    connection.execute("INSERT INTO alembic_version VALUES ('0004')")
    connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    connection.executemany("INSERT INTO notes (body) VALUES (?)", [(f"note {n}",) for n in range(rows)])
    connection.commit()
    connection.close()
    return path


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return make_database(tmp_path / "var" / "app.db")


@pytest.fixture
def images(tmp_path: Path) -> Path:
    directory = tmp_path / "var" / "images"
    (directory / "2026").mkdir(parents=True)
    (directory / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"a" * 100)
    (directory / "2026" / "b.jpg").write_bytes(b"\xff\xd8\xff" + b"b" * 50)
    return directory


@pytest.fixture
def settings(tmp_path: Path, database: Path, images: Path) -> Settings:
    return load_settings(
        DATABASE_URL=f"sqlite:///{database}", BACKUP_DIR=tmp_path / "backups", BACKUP_PATHS=[images]
    )
