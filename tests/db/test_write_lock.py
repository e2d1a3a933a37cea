"""WriteLock: one lastro writer per SQLite file at a time, across processes, waiting in the kernel."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from lastro.db.write_lock import WriteLock, lock_path

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the lock is not taken on Windows")

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


def test_acquire_holds_until_release(tmp_path: Path) -> None:
    """Between acquire() and release() no other writer can take the lock."""
    database = tmp_path / "app.db"
    lock = WriteLock(database)
    assert lock.acquire()
    assert held(database)
    lock.release()
    assert not held(database)
    lock.close()


def test_a_second_writer_waits_for_the_first(tmp_path: Path) -> None:
    """A second writer (another worker's) blocks in acquire() and gets the lock once the first lets go."""
    database = tmp_path / "app.db"
    first, second = WriteLock(database), WriteLock(database)
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


def test_an_unopenable_lock_file_means_writing_without_it(tmp_path: Path) -> None:
    """A directory that is gone gives False (the busy timeout alone orders writers), not an error."""
    lock = WriteLock(tmp_path / "missing" / "app.db")
    assert lock.acquire() is False
    lock.release()


def test_the_lock_file_sits_beside_the_database(tmp_path: Path) -> None:
    """`<database>-lastro-lock`, next to SQLite's own -wal and -shm files."""
    assert lock_path(tmp_path / "app.db") == tmp_path / "app.db-lastro-lock"
