"""`lastro backup verify`: a whole backup passes; a changed, missing or corrupted file, or a manifest that
is not one, fails with one line and exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lastro.backup import create_backup
from lastro.backup.manifest import sha256_of
from lastro.cli import main
from lastro.settings import Settings


def verify(*args: str) -> Result:
    return CliRunner().invoke(main, ["backup", "verify", *args])


def assert_fails(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: ")
    for fragment in fragments:
        assert fragment in line


@pytest.fixture
def backup(settings: Settings) -> Path:
    return create_backup(settings).path


def test_a_whole_backup_passes(backup: Path) -> None:
    """The named backup is checked and said ok, with its file count and schema revision."""
    result = verify(str(backup))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok {backup}: 3 files match the manifest")
    assert "revision 0004" in result.stdout


def test_without_a_path_the_newest_backup_is_checked(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lastro backup verify` alone checks the newest backup in BACKUP_DIR."""
    create_backup(settings)
    newest = create_backup(settings).path
    monkeypatch.setenv("BACKUP_DIR", str(settings.BACKUP_DIR))
    assert verify().stdout.startswith(f"ok {newest}:")


def test_no_backup_at_all_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With an empty BACKUP_DIR, verify says there is no backup and how to make one."""
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path / "empty"))
    assert_fails(verify(), "no backup in", "lastro backup")


def test_a_changed_stored_file_is_detected(backup: Path) -> None:
    """One byte of a stored image changed (same size): its checksum no longer matches."""
    image = backup / "files" / "images" / "a.png"
    data = bytearray(image.read_bytes())
    data[-1] ^= 0xFF
    image.write_bytes(bytes(data))
    assert_fails(verify(str(backup)), "a.png does not match its SHA-256")


def test_a_truncated_database_copy_is_detected(backup: Path) -> None:
    """A database copy cut short is reported by its size."""
    copy = backup / "database.sqlite"
    copy.write_bytes(copy.read_bytes()[:4096])
    assert_fails(verify(str(backup)), "database.sqlite has 4096 bytes")


def test_a_corrupted_copy_fails_integrity_check_even_with_a_matching_checksum(backup: Path) -> None:
    """Pages of the copy overwritten, and the manifest rewritten to match: integrity_check catches it."""
    copy = backup / "database.sqlite"
    data = bytearray(copy.read_bytes())
    for page in range(1, len(data) // 4096):  # every page after the first: headers and cells
        data[page * 4096 : page * 4096 + 12] = b"\x07" * 12
        data[(page + 1) * 4096 - 1000 : (page + 1) * 4096] = b"\x07" * 1000
    copy.write_bytes(bytes(data))
    manifest = json.loads((backup / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == "database.sqlite":
            entry["sha256"] = sha256_of(copy)
    (backup / "manifest.json").write_text(json.dumps(manifest))
    result = verify(str(backup))
    assert_fails(result, "database.sqlite")
    assert "integrity_check" in result.stderr or "not a sound SQLite database" in result.stderr


def test_a_missing_file_is_detected(backup: Path) -> None:
    """A file the manifest lists that is gone is named."""
    (backup / "files" / "images" / "2026" / "b.jpg").unlink()
    assert_fails(verify(str(backup)), "b.jpg is missing from the backup")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "is not a readable manifest"),
        ("[1, 2]", "a JSON object was expected"),
        ('{"format": 1}', "is not a backup manifest: KeyError"),
        ('{"format": 99}', "has format 99; this lastro reads format 1"),
    ],
    ids=["not-json", "not-an-object", "fields-missing", "newer-format"],
)
def test_a_garbage_manifest_is_a_clear_error(backup: Path, content: str, fragment: str) -> None:
    """A manifest that is not one lastro wrote is refused in one line that says what is wrong."""
    (backup / "manifest.json").write_text(content)
    assert_fails(verify(str(backup)), fragment)


def test_a_directory_without_a_manifest_is_not_a_backup(tmp_path: Path) -> None:
    """Verifying some other directory says it is not a backup."""
    assert_fails(verify(str(tmp_path)), "is not a backup: it has no manifest.json")
