"""lastro.db.flock: an exclusive flock taken and let go with the GIL kept, waited for with it released;
the same behaviour through libc and through `fcntl.flock`."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

if sys.platform == "win32":
    pytest.skip("flock is POSIX only", allow_module_level=True)

from lastro.db.flock import Flock, libc_flock


@pytest.fixture(params=["libc", "fcntl"])
def flock(request: pytest.FixtureRequest) -> Flock:
    return Flock(libc_flock() if request.param == "libc" else None)


@pytest.fixture
def descriptors(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """Two open file descriptions of one file: flock locks of one exclude the other's."""
    path = tmp_path / "lock"
    first = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    second = os.open(path, os.O_RDWR)
    yield first, second
    os.close(first)
    os.close(second)


def test_libc_flock_is_found_here() -> None:
    """On this platform a free lock is taken without letting go of the GIL."""
    assert libc_flock() is not None


def test_a_free_lock_is_taken_at_once(flock: Flock, descriptors: tuple[int, int]) -> None:
    """try_lock on a free file takes it."""
    first, _ = descriptors
    assert flock.try_lock(first)


def test_a_held_lock_is_refused_without_waiting(flock: Flock, descriptors: tuple[int, int]) -> None:
    """While one description holds the lock, try_lock through another answers False."""
    first, second = descriptors
    flock.lock(first)
    assert not flock.try_lock(second)


def test_unlock_lets_another_take_it(flock: Flock, descriptors: tuple[int, int]) -> None:
    """Once the holder unlocks, another description takes the lock."""
    first, second = descriptors
    flock.lock(first)
    flock.unlock(first)
    assert flock.try_lock(second)


def test_lock_waits_for_the_holder(flock: Flock, descriptors: tuple[int, int]) -> None:
    """A lock on a busy file is granted only after the holder lets go."""
    first, second = descriptors
    flock.lock(first)
    order: list[str] = []
    waiter = threading.Thread(target=lambda: (flock.lock(second), order.append("taken")))
    waiter.start()
    order.append("released")
    flock.unlock(first)
    waiter.join(timeout=10)
    assert order == ["released", "taken"]


def test_a_closed_descriptor_is_an_os_error(flock: Flock, tmp_path: Path) -> None:
    """A failure other than a busy lock (here EBADF) is raised, not taken for a busy lock."""
    fd = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    with pytest.raises(OSError, match="Bad file descriptor"):
        flock.try_lock(fd)
