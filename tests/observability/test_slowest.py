"""`SlowestRequests`: each worker's slowest requests of the last minutes, and their files for the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

from lastro.observability.slowest import SlowestRequests, publish, read_published, slow_file
from tests.support.clock import FakeTime

WALL = 1_800_000_000.0


def record(fake: FakeTime, keep: int = 3) -> SlowestRequests:
    return SlowestRequests(keep, clock=fake.clock, wall=lambda: WALL + fake.now)


def offer(slowest: SlowestRequests, seconds: float, route: str = "/items/{item_id}") -> None:
    """What the metrics middleware does for each request."""
    if seconds > slowest.floor:
        slowest.offer("GET", route, 200, seconds, f"request-{seconds}")


def test_the_slowest_are_kept_slowest_first() -> None:
    """Of five requests, the three slowest, in order, with what the dashboard shows of each."""
    slowest = record(FakeTime())
    for seconds in (0.2, 0.05, 0.9, 0.4, 0.01):
        offer(slowest, seconds)
    found = slowest.recent()
    assert [request["duration_ms"] for request in found] == [900.0, 400.0, 200.0]
    assert found[0] == {
        "pid": os.getpid(),
        "method": "GET",
        "route": "/items/{item_id}",
        "status": 200,
        "duration_ms": 900.0,
        "at": WALL + 1000.0 - 0.9,
        "request_id": "request-0.9",
    }


def test_the_floor_rises_only_once_the_record_is_full() -> None:
    """Until `keep` requests are kept every request is worth offering; then only one slower than the
    fastest kept."""
    slowest = record(FakeTime())
    offer(slowest, 0.3)
    offer(slowest, 0.1)
    assert slowest.floor == 0.0
    offer(slowest, 0.2)
    assert slowest.floor == 0.1


def test_the_observers_are_not_kept() -> None:
    """A slow scrape or dashboard read is not the application's slowness."""
    slowest = record(FakeTime())
    offer(slowest, 5.0, route="/metrics")
    offer(slowest, 5.0, route="/admin/dashboard.json")
    assert slowest.recent() == []


def test_a_request_leaves_the_record_after_five_minutes() -> None:
    """Kept for the window, then forgotten."""
    fake = FakeTime()
    slowest = record(fake)
    offer(slowest, 1.0)
    fake.now += 299
    assert len(slowest.recent()) == 1
    fake.now += 2
    assert slowest.recent() == []


def test_a_newer_request_outlives_the_slower_ones_before_it() -> None:
    """Three slow requests fill the record; a faster one a minute later is still there once they have
    expired, though it was under the floor they set."""
    fake = FakeTime()
    slowest = record(fake)
    for seconds in (3.0, 2.0, 1.0):
        offer(slowest, seconds)
    fake.now += 60
    slowest.rotate()  # the resource monitor, every MONITOR_INTERVAL
    offer(slowest, 0.5)
    fake.now += 250
    assert [request["duration_ms"] for request in slowest.recent()] == [500.0]


def test_a_worker_reads_the_others_files_and_not_its_own(tmp_path: Path) -> None:
    """Each live worker's published requests, but the reader's own (it has them in memory)."""
    publish(tmp_path, [{"pid": os.getpid(), "duration_ms": 1.0}])
    (slow_file(tmp_path, 41)).write_text(json.dumps([{"pid": 41, "duration_ms": 2.0}]))
    found = list(read_published(tmp_path, skip=os.getpid(), alive=lambda pid: True))
    assert found == [{"pid": 41, "duration_ms": 2.0}]


def test_a_gone_workers_file_is_ignored(tmp_path: Path) -> None:
    """The file of a process that has exited is not read, whatever it holds."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(gone.stdout)
    slow_file(tmp_path, pid).write_text(json.dumps([{"pid": pid, "duration_ms": 2.0}]))
    assert list(read_published(tmp_path, skip=os.getpid(), alive=psutil.pid_exists)) == []


def test_a_damaged_file_is_skipped(tmp_path: Path) -> None:
    """Half a file, or one that is not a list, costs nothing but its requests."""
    slow_file(tmp_path, 41).write_text("[{")
    slow_file(tmp_path, 42).write_text('{"pid": 42}')
    assert list(read_published(tmp_path, skip=os.getpid(), alive=lambda pid: True)) == []
