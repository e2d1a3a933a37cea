"""`lastro restore`: a checked copy swapped in, the previous database kept, refused while served."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lastro.backup import create_backup
from lastro.cli import main
from lastro.db import sqlite
from lastro.settings import Settings
from tests.backup.conftest import make_database
from tests.support.process import ROOT, wait_for


def restore(path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(main, ["restore", str(path), *args])


def count_notes(path: Path) -> int:
    connection = sqlite.driver().connect(str(path))
    try:
        return int(connection.execute("SELECT count(*) FROM notes").fetchone()[0])
    finally:
        connection.close()


@pytest.fixture
def backup(settings: Settings) -> Path:
    return create_backup(settings).path


def test_restore_into_a_new_place_creates_the_database_and_the_files(
    backup: Path, tmp_path: Path, images: Path
) -> None:
    """Into a DATABASE_URL that does not exist, the database is restored; stored files go back where they
    were backed up from, the directory there kept aside with --force."""
    target = tmp_path / "elsewhere" / "app.db"
    result = restore(backup, "--force", env={"DATABASE_URL": f"sqlite:///{target}"})
    assert result.exit_code == 0, result.output
    assert count_notes(target) == 50
    assert (images / "2026" / "b.jpg").read_bytes().startswith(b"\xff\xd8\xff")
    assert f"restored {images.resolve()} (previous kept as" in result.stdout


def test_an_existing_database_is_not_replaced_without_force(backup: Path, database: Path) -> None:
    """Without --force an existing database is left alone: one line, exit code 1."""
    before = database.read_bytes()
    result = restore(backup, env={"DATABASE_URL": f"sqlite:///{database}"})
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "exists: restore with --force to replace it" in line
    assert database.read_bytes() == before


def test_force_keeps_the_previous_database_with_its_wal_folded_in(backup: Path, tmp_path: Path) -> None:
    """A database a crash left with commits in its WAL is set aside whole (the WAL's rows included), and no
    stale -wal or -shm is left beside the restored file."""
    crashed = make_database(tmp_path / "crashed" / "app.db", rows=5)
    holder = sqlite.driver().connect(str(crashed))
    holder.execute("INSERT INTO notes (body) VALUES ('only in the wal')")
    holder.commit()
    shutil.copyfile(crashed, tmp_path / "app.db")  # what a crash leaves: the file and its WAL, not folded
    shutil.copyfile(crashed.with_name("app.db-wal"), tmp_path / "app.db-wal")
    holder.close()
    target = tmp_path / "app.db"
    result = restore(backup, "--force", env={"DATABASE_URL": f"sqlite:///{target}", "BACKUP_PATHS": ""})
    assert result.exit_code == 0, result.output
    (previous,) = tmp_path.glob("app.db.before-restore-*")
    assert count_notes(previous) == 6
    assert count_notes(target) == 50
    assert not target.with_name("app.db-wal").exists()


def test_restore_refuses_while_a_process_serves_and_goes_ahead_once_it_died(
    backup: Path, database: Path
) -> None:
    """A process holding the serving mark (as every worker does) makes restore refuse, --force or not; once
    it is killed (SIGKILL: no clean-up ran) the kernel has dropped the mark and restore proceeds."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pathlib import Path; from lastro.db.serving import ServingMark; "
            f"mark = ServingMark(Path({str(database.resolve())!r})); mark.hold_shared(); "
            "print('held', flush=True); time.sleep(60)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        env = {"DATABASE_URL": f"sqlite:///{database}"}
        refused = restore(backup, "--force", env=env)
        assert refused.exit_code == 1
        assert (
            "is being served by lastro: stop the service first; --force does not override" in refused.stderr
        )
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    wait_for(lambda: restore(backup, "--force", env=env).exit_code == 0, timeout=5)


def test_a_backup_of_another_kind_of_database_is_refused(backup: Path) -> None:
    """A SQLite backup is not restored into PostgreSQL: one line says why."""
    result = restore(backup, "--force", env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/x"})
    assert result.exit_code == 1
    assert "holds a sqlite database and DATABASE_URL is PostgreSQL" in result.stderr
