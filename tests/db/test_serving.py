"""`ServingMark`: shared while serving, exclusive only when nobody serves, dropped with its holder."""

from __future__ import annotations

from pathlib import Path

from lastro.db.serving import ServingMark, mark_path, sqlite_file


def test_two_servers_share_the_mark_and_keep_restore_out(tmp_path: Path) -> None:
    """Two holders of the shared mark coexist; an exclusive try fails while either holds it."""
    database = tmp_path / "app.db"
    first, second, restore = ServingMark(database), ServingMark(database), ServingMark(database)
    assert first.hold_shared()
    assert second.hold_shared()
    assert not restore.try_exclusive()
    first.release()
    assert not restore.try_exclusive()
    second.release()
    assert restore.try_exclusive()
    restore.release()


def test_the_mark_is_a_file_beside_the_database(tmp_path: Path) -> None:
    """The mark of app.db is app.db-lastro-serving, created by the first holder."""
    mark = ServingMark(tmp_path / "app.db")
    mark.hold_shared()
    mark.release()
    assert mark_path(tmp_path / "app.db").is_file()
    assert mark.path.name == "app.db-lastro-serving"


def test_a_directory_it_cannot_write_leaves_the_service_unmarked(tmp_path: Path) -> None:
    """When the mark file cannot be created, hold_shared says so (False) instead of failing start-up."""
    assert not ServingMark(tmp_path / "missing" / "app.db").hold_shared()


def test_only_a_sqlite_file_has_a_mark(tmp_path: Path) -> None:
    """sqlite_file names the file of a SQLite URL, resolved, and nothing for memory or PostgreSQL."""
    assert sqlite_file(f"sqlite:///{tmp_path / 'app.db'}") == (tmp_path / "app.db").resolve()
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql://u@h/db") is None
    assert sqlite_file("not a url") is None
