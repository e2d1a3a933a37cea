"""DiskWatch: ready fails below DISK_MIN_FREE_BYTES and after a write met a full disk, until space is back."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import structlog

from lastro.disk import SPACE_BACK_BYTES, DiskWatch, Usage
from lastro.health import CheckFailed
from tests.support.clock import FakeTime

MIB = 1024 * 1024


class Volume:
    """A volume whose free bytes the test sets."""

    def __init__(self, free: int) -> None:
        self.free = free

    def __call__(self, _: Path) -> tuple[int, int, int]:
        return (100 * MIB, 100 * MIB - self.free, self.free)

    def usage(self) -> Usage:
        return Usage(*self(Path()))


def _watch(volume: Volume, time: FakeTime, min_free: int = 10 * MIB) -> DiskWatch:
    return DiskWatch(Path("/data"), min_free=min_free, hold=10.0, clock=time.clock, usage=volume)


def test_plenty_of_space_is_ready_and_shows_the_figures() -> None:
    """Above the minimum the check passes and reports free, total and the minimum."""
    volume = Volume(50 * MIB)
    problem, detail = _watch(volume, FakeTime()).status(volume.usage())
    assert problem is None
    assert detail["free_bytes"] == 50 * MIB
    assert detail["total_bytes"] == 100 * MIB
    assert detail["min_free_bytes"] == 10 * MIB
    assert detail["path"] == "/data"


def test_below_the_minimum_ready_fails_before_the_disk_is_full() -> None:
    """Fewer free bytes than DISK_MIN_FREE_BYTES fail the check, naming the setting."""
    volume = Volume(5 * MIB)
    problem, _ = _watch(volume, FakeTime()).status(volume.usage())
    assert problem is not None
    assert "DISK_MIN_FREE_BYTES" in problem


def test_a_zero_minimum_never_fails_on_space() -> None:
    """DISK_MIN_FREE_BYTES=0 turns the early warning off."""
    volume = Volume(0)
    problem, _ = _watch(volume, FakeTime(), min_free=0).status(volume.usage())
    assert problem is None


def test_a_full_disk_holds_ready_until_space_is_back() -> None:
    """After a write met a full disk, ready fails until the volume has 1 MiB more free than then."""
    volume, time = Volume(4096), FakeTime()
    watch = _watch(volume, time, min_free=0)
    watch.full("the database's disk is full")
    problem, detail = watch.status(volume.usage())
    assert problem is not None
    assert "full disk" in problem
    assert detail["storage_full"]["detail"] == "the database's disk is full"
    volume.free += SPACE_BACK_BYTES - 1
    assert watch.status(volume.usage())[0] is not None
    volume.free += 1
    assert watch.status(volume.usage())[0] is None


def test_a_full_disk_holds_ready_for_the_hold_time_where_space_cannot_be_measured() -> None:
    """With no local volume (PostgreSQL), ready fails for `hold` seconds after the last failure."""
    time = FakeTime()
    watch = DiskWatch(None, min_free=10 * MIB, hold=10.0, clock=time.clock)
    assert watch.status(None) == (None, {"storage_full_failures": 0})
    watch.full("the database's disk is full")
    time.now += 9
    assert watch.status(None)[0] is not None
    time.now += 1
    assert watch.status(None)[0] is None


def test_each_failure_starts_the_hold_again() -> None:
    """A later failure re-arms the hold."""
    time = FakeTime()
    watch = DiskWatch(None, min_free=0, hold=10.0, clock=time.clock)
    watch.full("full")
    time.now += 8
    watch.full("full")
    time.now += 8
    assert watch.status(None)[0] is not None


def test_failures_are_logged_once_a_minute_with_a_count() -> None:
    """Many failures of one kind make one log line, then one a minute with the count of the others."""
    time = FakeTime()
    watch = DiskWatch(None, min_free=0, clock=time.clock)
    with structlog.testing.capture_logs() as logs:
        for _ in range(100):
            watch.full("the database's disk is full")
        time.now += 60
        watch.full("the database's disk is full")
    lines = [line for line in logs if line["event"] == "storage full"]
    assert [line["not_logged_since_last"] for line in lines] == [0, 99]
    assert all("exc_info" not in line for line in lines)


def test_the_check_raises_check_failed_with_the_figures(tmp_path: Path) -> None:
    """On a real directory the failing check still carries the free bytes for /health."""
    watch = DiskWatch(tmp_path, min_free=1 << 62)
    with pytest.raises(CheckFailed) as raised:
        anyio.run(watch.check)
    assert raised.value.detail["free_bytes"] > 0
