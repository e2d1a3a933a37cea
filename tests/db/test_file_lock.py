"""SQLITE_WRITE_LOCK picks the lock file's backend: flock, portalocker (LockFileEx on Windows) or none."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from lastro.db.engine import Database, DatabaseOptions
from lastro.db.file_lock import backend_for, check_backend, open_lock
from lastro.db.write_lock import WriteLock
from lastro.db.writer import SQLiteWriter
from lastro.errors import ConfigurationError
from lastro.settings import get_settings

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="runs the POSIX side of each backend")


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_auto_is_flock_on_posix(platform: str) -> None:
    """auto takes flock on Linux and macOS."""
    assert backend_for("auto", platform) == "flock"


def test_auto_on_windows_without_pywin32_takes_no_lock() -> None:
    """auto on Windows without portalocker's win32 extra: no lock (msvcrt's polling lock is never used)."""
    assert backend_for("auto", "win32") is None


@pytest.mark.parametrize("setting", ["flock", "portalocker"])
def test_a_named_backend_is_taken_as_named(setting: str) -> None:
    """flock and portalocker are taken as the setting names them."""
    assert backend_for(setting) == setting


def test_off_takes_no_lock(tmp_path: Path) -> None:
    """SQLITE_WRITE_LOCK=off: the writers write unordered, no lock file is made."""
    lock = WriteLock(tmp_path / "app.db", "off")
    assert (lock.path, lock.acquire(), lock.try_acquire()) == (None, False, False)
    assert list(tmp_path.iterdir()) == []


def test_flock_on_windows_is_refused_naming_the_setting() -> None:
    """flock cannot run on Windows: one message naming SQLITE_WRITE_LOCK and what to use instead."""
    with pytest.raises(ConfigurationError, match=r"SQLITE_WRITE_LOCK=flock .* use auto or portalocker"):
        check_backend("flock", "win32")


def test_portalocker_on_windows_without_pywin32_is_refused() -> None:
    """portalocker on Windows needs its win32 extra (LockFileEx); without it the setting is refused."""
    needs = r"SQLITE_WRITE_LOCK=portalocker needs .*portalocker\[win32\]"
    with pytest.raises(ConfigurationError, match=needs):
        check_backend("portalocker", "win32")


@pytest.mark.parametrize("setting", ["auto", "flock", "portalocker", "off"])
def test_every_backend_that_runs_here_passes_the_check(setting: str) -> None:
    """On Linux every value of the setting can run."""
    check_backend(setting, "linux")


def test_the_two_backends_exclude_each_other(tmp_path: Path) -> None:
    """A flock holder keeps a portalocker writer out (on POSIX both are flock): a mixed deploy is ordered."""
    path = tmp_path / "app.db-lastro-lock"
    holder, other = open_lock(path, "flock"), open_lock(path, "portalocker")
    try:
        holder.acquire()
        assert other.try_acquire() is False
        holder.release()
        assert other.try_acquire() is True
    finally:
        other.release()
        holder.close()
        other.close()


def test_a_portalocker_waiter_blocks_until_the_holder_releases(tmp_path: Path) -> None:
    """portalocker's blocking acquire waits (in the kernel) and returns once the holder lets go."""
    path = tmp_path / "app.db-lastro-lock"
    holder, waiter = open_lock(path, "portalocker"), open_lock(path, "portalocker")
    holder.acquire()
    got = threading.Event()

    def wait() -> None:
        waiter.acquire()
        got.set()

    thread = threading.Thread(target=wait)
    thread.start()
    try:
        assert not got.wait(0.2)
        holder.release()
        assert got.wait(5)
    finally:
        thread.join(5)
        waiter.release()
        holder.close()
        waiter.close()


def test_the_setting_reaches_the_writer(tmp_path: Path) -> None:
    """SQLITE_WRITE_LOCK flows from the settings through the database options to the writer's lock."""
    settings = get_settings(SQLITE_WRITE_LOCK="portalocker")
    database = Database(f"sqlite:///{tmp_path / 'app.db'}", DatabaseOptions.from_settings(settings, 1))
    writer = SQLiteWriter(database)
    try:
        assert writer.lock.backend == "portalocker"
    finally:
        writer.close()
        database.dispose()
