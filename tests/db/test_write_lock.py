"""WriteLock: one lastro writer per SQLite file at a time, across processes, waiting in the kernel.

Every test runs once per backend that runs here: flock, and portalocker (its FlockLocker on Linux, the
code path that is LockFileEx on Windows).
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from lastro.db.write_lock import WriteLock, lock_path

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="held() below looks with fcntl")


@pytest.fixture(params=["flock", "portalocker"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


if sys.platform != "win32":
    import fcntl


def held(path: Path) -> bool:
    """Whether some open file holds the lock: a non-blocking attempt from a file of our own."""
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_acquire_holds_until_release(tmp_path: Path, backend: str) -> None:
    """Between acquire() and release() no other writer can take the lock."""
    database = tmp_path / "app.db"
    lock = WriteLock(database, backend)
    assert lock.acquire()
    assert held(database)
    lock.release()
    assert not held(database)
    lock.close()


def test_a_second_writer_waits_for_the_first(tmp_path: Path, backend: str) -> None:
    """A second writer (another worker's) blocks in acquire() and gets the lock once the first lets go."""
    database = tmp_path / "app.db"
    first, second = WriteLock(database, backend), WriteLock(database, backend)
    first.acquire()
    released = threading.Event()
    saw_release: list[bool] = []

    def wait_for_turn() -> None:
        second.acquire()
        saw_release.append(released.is_set())
        second.release()

    waiter = threading.Thread(target=wait_for_turn)
    waiter.start()
    released.set()
    first.release()
    waiter.join(5)
    assert saw_release == [True]
    first.close()
    second.close()


def test_an_unopenable_lock_file_means_writing_without_it(tmp_path: Path, backend: str) -> None:
    """A directory that is gone gives False (the busy timeout alone orders writers), not an error."""
    lock = WriteLock(tmp_path / "missing" / "app.db", backend)
    assert lock.acquire() is False
    lock.release()


def test_the_lock_file_sits_beside_the_database(tmp_path: Path, backend: str) -> None:
    """`<database>-lastro-lock`, next to SQLite's own -wal and -shm files."""
    assert lock_path(tmp_path / "app.db") == tmp_path / "app.db-lastro-lock"
    assert WriteLock(tmp_path / "app.db", backend).path == tmp_path / "app.db-lastro-lock"


def test_try_acquire_takes_a_free_lock_only(tmp_path: Path, backend: str) -> None:
    """try_acquire takes a free lock, returns False at once while another writer holds it, and takes it
    again once released."""
    first, second = WriteLock(tmp_path / "app.db", backend), WriteLock(tmp_path / "app.db", backend)
    try:
        assert first.try_acquire() is True
        assert second.try_acquire() is False
        first.release()
        assert second.try_acquire() is True
    finally:
        second.release()
        first.close()
        second.close()


def test_try_acquire_without_a_lock_file_is_false(tmp_path: Path, backend: str) -> None:
    """With no lock file to open, try_acquire says the lock was not taken."""
    assert WriteLock(tmp_path / "missing" / "app.db", backend).try_acquire() is False


def test_a_database_without_a_file_has_no_lock(backend: str) -> None:
    """An in-memory database has no lock file: writing is never ordered by one."""
    lock = WriteLock(None, backend)
    assert (lock.path, lock.acquire(), lock.try_acquire()) == (None, False, False)


def test_the_lock_is_taken_again_and_again_on_one_file(tmp_path: Path, backend: str) -> None:
    """One WriteLock keeps one open file across turns; close gives it back; releasing after is harmless."""
    lock = WriteLock(tmp_path / "app.db", backend)
    for _ in range(3):
        assert lock.acquire()
        lock.release()
    lock.close()
    lock.release()
    lock.close()
    assert not held(tmp_path / "app.db")


def test_a_lock_file_that_could_not_be_opened_is_tried_again(tmp_path: Path, backend: str) -> None:
    """Once the directory exists, the next turn takes the lock."""
    lock = WriteLock(tmp_path / "later" / "app.db", backend)
    assert lock.acquire() is False
    (tmp_path / "later").mkdir()
    try:
        assert lock.acquire() is True
        assert held(tmp_path / "later" / "app.db")
    finally:
        lock.release()
        lock.close()


def test_the_lock_file_is_not_executable(tmp_path: Path, backend: str) -> None:
    """The lock file is created rw-r--r-- at most, like the database beside it."""
    lock = WriteLock(tmp_path / "app.db", backend)
    lock.acquire()
    lock.release()
    lock.close()
    assert stat.S_IMODE(lock_path(tmp_path / "app.db").stat().st_mode) & 0o133 == 0


def test_a_subclass_locks_the_file_its_suffix_names(tmp_path: Path, backend: str) -> None:
    """A lock class naming another suffix takes a file of its own, apart from the write lock."""

    class OtherLock(WriteLock):
        suffix = "-other-lock"

    other, writer = OtherLock(tmp_path / "app.db", backend), WriteLock(tmp_path / "app.db", backend)
    try:
        assert other.path == tmp_path / "app.db-other-lock"
        assert (other.try_acquire(), writer.try_acquire()) == (True, True)
    finally:
        for lock in (other, writer):
            lock.release()
            lock.close()
