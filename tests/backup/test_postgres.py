"""PostgreSQL backups: pg_dump -Fc with a manifest, verified by pg_restore --list, restored by a swap."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from lastro.backup import BackupError, create_backup, restore_backup, verify_backup
from lastro.backup.manifest import sha256_of
from lastro.cli import main
from lastro.settings import Settings, load_settings
from tests.support.databases import conninfo, create_database, database_name, drop_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def database() -> Iterator[str]:
    """A throwaway database with a table of 20 rows at schema revision 0004."""
    name = database_name("lastro_backup")
    create_database(name)
    with psycopg.connect(conninfo(name), autocommit=True) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num varchar(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('0004')")
        connection.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text)")
        connection.execute("INSERT INTO notes (body) SELECT 'note ' || n FROM generate_series(1, 20) n")
    yield name
    drop_database(name)


@pytest.fixture
def settings(database: str, tmp_path: Path) -> Settings:
    return load_settings(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:5432/{database}", BACKUP_DIR=tmp_path / "backups"
    )


def test_a_dump_is_made_and_verified(settings: Settings) -> None:
    """The backup holds database.dump (pg_dump's custom format) and the schema revision; verify reads it."""
    result = create_backup(settings)
    assert (result.manifest.database_kind, result.manifest.schema_revision) == ("postgresql", "0004")
    assert (result.path / "database.dump").read_bytes().startswith(b"PGDMP")
    verify_backup(result.path)


def test_a_truncated_dump_fails_verify(settings: Settings) -> None:
    """A dump cut short is refused by its size, and by pg_restore once the manifest is made to agree."""
    path = create_backup(settings).path
    dump = path / "database.dump"
    dump.write_bytes(dump.read_bytes()[:200])
    with pytest.raises(BackupError, match=r"database\.dump has 200 bytes"):
        verify_backup(path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][0] |= {"size": 200, "sha256": sha256_of(dump)}
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match=r"^pg_restore --list .* failed: "):
        verify_backup(path)


def test_without_pg_dump_the_backup_is_one_line(settings: Settings, tmp_path: Path) -> None:
    """With no pg_dump on PATH: one line naming the tool and how to install it, and no backup left."""
    result = CliRunner(env={"DATABASE_URL": settings.DATABASE_URL, "PATH": str(tmp_path)}).invoke(
        main, ["backup", "--output", str(tmp_path / "b")]
    )
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: pg_dump is not installed")
    assert list((tmp_path / "b").iterdir()) == []


def test_restore_refuses_while_another_session_is_connected(settings: Settings, database: str) -> None:
    """A connection to the database (any client) makes restore refuse, naming the client."""
    path = create_backup(settings).path
    url = f"postgresql://postgres@127.0.0.1:5432/{database}?application_name=reporting"
    with psycopg.connect(url), pytest.raises(BackupError, match=r"being served \(reporting connected\)"):
        restore_backup(path, settings, force=True)


def test_restore_swaps_a_fresh_copy_in_and_keeps_the_previous_database(
    settings: Settings, database: str
) -> None:
    """Rows written after the backup are gone from the restored database and still in the kept one."""
    path = create_backup(settings).path
    with psycopg.connect(conninfo(database), autocommit=True) as connection:
        connection.execute("INSERT INTO notes (body) VALUES ('after the backup')")
    result = restore_backup(path, settings, force=True)
    assert result.previous is not None
    try:
        for name, expected in ((database, 20), (result.previous, 21)):
            with psycopg.connect(conninfo(name)) as connection:
                assert connection.execute("SELECT count(*) FROM notes").fetchone() == (expected,)
    finally:
        drop_database(result.previous)
