"""`SharedFileStore`: counts shared by every process that maps the same file."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from pathlib import Path

import pytest

from lastro.ratelimit.shared_file import PROBES, SLOTS, SharedFileStore
from lastro.ratelimit.window import Rate
from tests.support.clock import FakeTime

RATE = Rate(3, 60)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "limits"


def allowed(store: SharedFileStore, key: str, rate: Rate = RATE) -> bool:
    return store.hit_now([(key, rate)])[0].allowed


def test_a_key_gets_its_quota_and_no_more(path: Path) -> None:
    """Three hits of a 3/minute rate pass, the fourth is refused with a wait."""
    store = SharedFileStore(path, clock=FakeTime(6000).clock)
    assert [allowed(store, "a") for _ in range(4)] == [True, True, True, False]
    assert store.hit_now([("a", RATE)])[0].retry_after > 0


def test_two_stores_on_one_file_share_the_counts(path: Path) -> None:
    """Hits through one mapping use up the quota seen through another."""
    time = FakeTime(6000)
    first, second = SharedFileStore(path, clock=time.clock), SharedFileStore(path, clock=time.clock)
    assert [allowed(first, "a"), allowed(first, "a"), allowed(second, "a")] == [True, True, True]
    assert [allowed(second, "a"), allowed(first, "a")] == [False, False]


def test_the_counts_survive_reopening_the_file(path: Path) -> None:
    """A store opened while others are open sees the hits they made."""
    time = FakeTime(6000)
    for _ in range(3):
        SharedFileStore(path, clock=time.clock).hit_now([("a", RATE)])
    assert not allowed(SharedFileStore(path, clock=time.clock), "a")


def test_a_file_of_another_layout_is_started_afresh(path: Path) -> None:
    """A file that is not lastro's table (an older layout, garbage) is zeroed, not misread."""
    path.write_bytes(b"not a table" * 1000)
    assert allowed(SharedFileStore(path, clock=FakeTime(6000).clock), "a")


def test_the_window_rolls_forward(path: Path) -> None:
    """A window later the previous hits weigh less; two windows later they are gone."""
    time = FakeTime(6000)
    store = SharedFileStore(path, clock=time.clock)
    for _ in range(3):
        store.hit_now([("a", RATE)])
    time.now += 90  # halfway into the next window: 3 * 0.5 still count, rounded down to 1
    assert store.hit_now([("a", RATE)])[0].remaining == 1
    time.now += 120
    assert store.hit_now([("a", RATE)])[0].remaining == 2


def test_a_refused_check_counts_against_no_rate(path: Path) -> None:
    """When one rate refuses, the hit is not counted against the others."""
    store = SharedFileStore(path, clock=FakeTime(6000).clock)
    tight, loose = Rate(1, 1), Rate(10, 60)
    store.hit_now([("a", tight), ("a", loose)])
    assert not store.hit_now([("a", tight), ("a", loose)])[0].allowed
    assert store.hit_now([("a", loose)])[0].remaining == 8


def test_a_crowded_neighbourhood_reuses_the_oldest_slot(path: Path) -> None:
    """With every probe slot held by a live key, a new key takes the slot whose window began first."""
    time = FakeTime(6000)
    store = SharedFileStore(path, clock=time.clock)
    homes: dict[int, list[str]] = {}
    for key in (f"k{n}" for n in range(200_000)):
        homes.setdefault(store.slot_of(key, RATE), []).append(key)
    keys = max(homes.values(), key=len)[: PROBES + 1]  # ~3 keys a slot: the most crowded has over 9
    assert len(keys) == PROBES + 1
    for key in keys[:PROBES]:
        store.hit_now([(key, RATE)])
        time.now += 60  # each key's window starts later than the one before
    assert allowed(store, keys[PROBES])  # took over keys[0]'s slot
    assert store.hit_now([(keys[0], RATE)])[0].remaining == 2  # keys[0] starts again from zero


def _hammer(path: Path, hits: int, results: multiprocessing.Queue[int]) -> None:  # pragma: no cover - child
    store = SharedFileStore(path)
    results.put(sum(store.hit_now([("shared", Rate(500, 3600))])[0].allowed for _ in range(hits)))
    asyncio.run(store.close())


def test_processes_hitting_at_once_never_pass_more_than_the_quota(path: Path) -> None:
    """Four processes racing for a 500-hit quota with 1,000 hits between them get exactly 500."""
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[int] = context.Queue()
    SharedFileStore(path)  # created once, not raced
    processes = [context.Process(target=_hammer, args=(path, 250, results)) for _ in range(4)]
    for process in processes:
        process.start()
    passed = sum(results.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(timeout=10)
    assert passed == 500


def test_the_table_is_two_mebibytes() -> None:
    """65,536 slots of 32 bytes: the file stays small whatever the traffic."""
    assert SLOTS * 32 == 2 * 1024 * 1024


def test_the_last_store_to_close_removes_the_file(path: Path) -> None:
    """A stopped service leaves no table behind."""
    first, second = SharedFileStore(path), SharedFileStore(path)
    asyncio.run(first.close())
    assert path.exists()
    asyncio.run(second.close())
    assert not path.exists()


def test_a_store_opened_after_a_sibling_closed_keeps_the_counts(path: Path) -> None:
    """A recycled worker finds the hits its running siblings and its predecessor made."""
    time = FakeTime(6000)
    sibling, predecessor = SharedFileStore(path, clock=time.clock), SharedFileStore(path, clock=time.clock)
    predecessor.hit_now([("a", RATE)])
    asyncio.run(predecessor.close())
    sibling.hit_now([("a", RATE)])
    successor = SharedFileStore(path, clock=time.clock)
    assert [allowed(successor, "a"), allowed(successor, "a")] == [True, False]


def test_a_store_reopened_after_every_store_closed_starts_afresh(path: Path) -> None:
    """Once the file is gone, the next store creates a new, empty table."""
    time = FakeTime(6000)
    store = SharedFileStore(path, clock=time.clock)
    for _ in range(3):
        store.hit_now([("a", RATE)])
    asyncio.run(store.close())
    assert allowed(SharedFileStore(path, clock=time.clock), "a")


def test_a_symbolic_link_is_not_followed(path: Path, tmp_path: Path) -> None:
    """A link planted where the table goes is refused, not written through."""
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    path.symlink_to(target)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        SharedFileStore(path)
    assert target.read_bytes() == b"keep"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_file_of_another_user_is_refused(path: Path) -> None:
    """Counts in a file another user can write would be theirs to set."""
    path.touch()
    os.chown(path, 65534, 65534)
    with pytest.raises(PermissionError, match="another user"):
        SharedFileStore(path)
