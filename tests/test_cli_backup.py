"""`lastro backup` and `lastro backup list`: one summary line per backup, one error line on failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lastro.cli import main
from tests.backup.conftest import make_database


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["backup", *args])


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = make_database(tmp_path / "var" / "app.db")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    return path


def test_backup_lists_its_subcommands() -> None:
    """`lastro backup --help` shows verify and list beside making one."""
    result = invoke("--help")
    assert result.exit_code == 0
    assert "verify" in result.stdout
    assert "list" in result.stdout


def test_backup_makes_one_into_backup_dir_and_says_what_it_made(tmp_path: Path) -> None:
    """`lastro backup` writes into ./backups and names the backup, its kind, revision and size."""
    result = invoke()
    assert result.exit_code == 0, result.output
    (made,) = (tmp_path / "backups").iterdir()
    assert result.stdout.startswith(f"backup backups/{made.name}: sqlite at revision 0004, 1 files, ")


def test_output_overrides_backup_dir(tmp_path: Path) -> None:
    """--output is where the backup goes."""
    assert invoke("--output", str(tmp_path / "elsewhere")).exit_code == 0
    assert len(list((tmp_path / "elsewhere").iterdir())) == 1


def test_an_unwritable_backup_dir_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    """A BACKUP_DIR that cannot be created (a file stands in its way) fails in one line, leaving nothing."""
    (tmp_path / "blocker").write_text("a file")
    result = invoke("--output", str(tmp_path / "blocker" / "backups"))
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: cannot write into BACKUP_DIR ")
    assert "Not a directory" in line


def test_a_missing_database_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A DATABASE_URL whose file does not exist is named, and no backup directory is left."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    result = invoke()
    assert result.exit_code == 1
    assert "none.db does not exist" in result.stderr
    assert list((tmp_path / "backups").iterdir()) == []


def test_list_shows_each_backup_oldest_first(tmp_path: Path) -> None:
    """`lastro backup list` shows each backup with its time, kind, revision and size."""
    assert invoke().exit_code == 0
    result = invoke("list")
    assert result.exit_code == 0
    (line,) = result.stdout.splitlines()
    assert line.startswith("backups/lastro-backup-")
    assert "sqlite  revision 0004" in line


def test_backup_applies_the_retention_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With BACKUP_KEEP=1 each `lastro backup` leaves one backup and names what it removed; --no-prune
    keeps them all."""
    monkeypatch.setenv("BACKUP_KEEP", "1")
    out = str(tmp_path / "b")
    assert invoke("--output", out).exit_code == 0
    assert invoke("--output", out, "--no-prune").exit_code == 0
    assert len(list((tmp_path / "b").iterdir())) == 2
    result = invoke("--output", out)
    assert result.stdout.count("removed ") == 2
    assert len(list((tmp_path / "b").iterdir())) == 1
