"""WalCheckpointer: the WAL is truncated past its limit, once across workers, with a bounded wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from sqlalchemy import text

from lastro.db import sqlite
from lastro.db.checkpoint import CheckpointLock, WalCheckpointer, checkpoint_lock_path, wal_path
from lastro.db.engine import Database
from lastro.db.write_lock import WriteLock

LIMIT = 64 * 1024


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'app.db'}")
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)"))
    yield database
    database.dispose()


def _grow_wal(database: Database, rows: int = 100) -> None:
    with database.engine.begin() as connection:
        for _ in range(rows):
            connection.execute(text("INSERT INTO t (body) VALUES (randomblob(4000))"))


def _checkpointer(database: Database, **options: int) -> WalCheckpointer:
    assert database.sqlite_path is not None
    return WalCheckpointer(database.sqlite_path, LIMIT, **options)


def test_over_the_limit_the_wal_is_truncated(database: Database) -> None:
    """A WAL past the limit is checkpointed and truncated to zero bytes."""
    _grow_wal(database)
    checkpointer = _checkpointer(database)
    assert checkpointer.wal_bytes() > LIMIT
    assert checkpointer.run_once() is True
    assert checkpointer.wal_bytes() == 0
    assert checkpointer.checkpoints == 1


def test_the_data_survives_the_checkpoint(database: Database) -> None:
    """Every row written before the checkpoint is still read after it."""
    _grow_wal(database)
    _checkpointer(database).run_once()
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 100


def test_under_the_limit_nothing_is_done(database: Database) -> None:
    """A WAL under the limit is left alone."""
    _grow_wal(database, rows=2)
    checkpointer = _checkpointer(database)
    before = checkpointer.wal_bytes()
    assert checkpointer.run_once() is None
    assert checkpointer.wal_bytes() == before
    assert checkpointer.checkpoints == 0


@pytest.mark.parametrize("backend", ["flock", "portalocker"])
def test_skipped_while_another_worker_holds_the_checkpoint_lock(database: Database, backend: str) -> None:
    """Another process's checkpoint lock (another descriptor, as another worker has) means skip this turn,
    with either lock backend."""
    _grow_wal(database)
    assert database.sqlite_path is not None
    checkpointer = WalCheckpointer(database.sqlite_path, LIMIT, lock_backend=backend)
    other = CheckpointLock(database.sqlite_path.resolve(), backend)
    assert other.try_acquire()
    try:
        assert checkpointer.run_once() is None
        assert checkpointer.wal_bytes() > LIMIT
        assert checkpointer.skipped == 1
    finally:
        other.release()
    assert checkpointer.run_once() is True


def test_a_reader_holding_a_snapshot_makes_it_incomplete_within_the_busy_timeout(database: Database) -> None:
    """A reader that never lets go bounds the wait to the busy timeout; the checkpoint is incomplete."""
    _grow_wal(database)
    assert database.sqlite_path is not None
    reader = sqlite.driver().connect(str(database.sqlite_path), isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM t").fetchone()  # holds its snapshot until COMMIT
        _grow_wal(database, rows=20)
        checkpointer = _checkpointer(database, busy_timeout_ms=200)
        started = time.monotonic()
        assert checkpointer.run_once() is False
        assert checkpointer.run_once() is False
        assert time.monotonic() - started < 4.0
        assert checkpointer.incomplete == 2
        reader.execute("COMMIT")
    finally:
        reader.close()
    assert checkpointer.run_once() is True


@pytest.mark.parametrize("backend", ["flock", "portalocker"])
def test_the_checkpoint_waits_for_lastro_writers(database: Database, backend: str) -> None:
    """While a worker holds the write lock, the checkpoint waits for it instead of racing SQLite's lock."""
    _grow_wal(database)
    assert database.sqlite_path is not None
    writer = WriteLock(database.sqlite_path.resolve(), backend)
    assert writer.acquire()
    checkpointer = WalCheckpointer(database.sqlite_path, LIMIT, lock_backend=backend)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (checkpointer.run_once(), done.set()))
    thread.start()
    try:
        assert not done.wait(0.3)
    finally:
        writer.release()
        writer.close()
    assert done.wait(5)
    thread.join(5)
    assert wal_path(database.sqlite_path.resolve()).stat().st_size == 0


def test_at_the_limit_exactly_nothing_is_done(database: Database) -> None:
    """A WAL of exactly max_bytes is within the limit; one byte over is not."""
    _grow_wal(database)
    assert database.sqlite_path is not None
    size = _checkpointer(database).wal_bytes()
    assert WalCheckpointer(database.sqlite_path, size).run_once() is None
    assert WalCheckpointer(database.sqlite_path, size - 1).run_once() is True


def test_a_missing_wal_counts_as_empty(tmp_path: Path) -> None:
    """Before the first write there is no WAL file: its size is zero and nothing is done."""
    checkpointer = WalCheckpointer(tmp_path / "new.db", 0)
    assert (checkpointer.wal_bytes(), checkpointer.run_once()) == (0, None)


def test_by_default_it_looks_twenty_times_a_second_and_waits_a_second_for_readers(tmp_path: Path) -> None:
    """The default interval is 50 ms (1 s while the WAL keeps its size), the busy timeout 1000 ms."""
    checkpointer = WalCheckpointer(tmp_path / "app.db", LIMIT)
    assert (checkpointer.interval, checkpointer.idle_interval, checkpointer.busy_timeout_ms) == (
        0.05,
        1.0,
        1000,
    )


def test_the_checkpoint_lock_is_a_file_beside_the_database(tmp_path: Path) -> None:
    """The checkpoint lock is `<database>-lastro-checkpoint`, apart from the write lock."""
    database = tmp_path / "app.db"
    assert checkpoint_lock_path(database) == tmp_path / "app.db-lastro-checkpoint"


@pytest.mark.anyio
async def test_health_detail_reports_the_wal_and_the_checkpoints(database: Database) -> None:
    """The check reports the WAL size and limit, the checkpoints done, incomplete and skipped, and the last
    one's duration in milliseconds."""
    checkpointer = _checkpointer(database)
    assert (await checkpointer.check())["last_duration_ms"] is None
    _grow_wal(database)
    checkpointer.run_once()
    detail = await checkpointer.check()
    duration = detail.pop("last_duration_ms")
    assert detail == {"wal_bytes": 0, "wal_max_bytes": LIMIT, "checkpoints": 1, "incomplete": 0, "skipped": 0}
    assert isinstance(duration, float)
    assert 0 < duration < 5000
    assert round(duration, 3) == duration


@pytest.mark.anyio
async def test_the_watch_truncates_a_wal_grown_past_the_limit(database: Database) -> None:
    """The background task keeps looking, notices a WAL grown over the limit and truncates it, unasked."""
    checkpointer = _checkpointer(database, interval=0)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(checkpointer.watch)
            for _ in range(3):  # several turns of the watch with nothing to do
                await anyio.lowlevel.checkpoint()
            _grow_wal(database)
            while checkpointer.checkpoints == 0:
                await anyio.lowlevel.checkpoint()  # the watch runs at interval 0: nothing waits
            group.cancel_scope.cancel()
    assert checkpointer.wal_bytes() == 0


def test_every_checkpoint_is_counted(database: Database) -> None:
    """Two checkpoints in a row count two."""
    checkpointer = _checkpointer(database)
    for _ in range(2):
        _grow_wal(database)
        assert checkpointer.run_once() is True
    assert checkpointer.checkpoints == 2


def test_at_the_limit_a_held_checkpoint_lock_is_no_skip(database: Database) -> None:
    """A WAL at the limit needs no checkpoint: another worker holding the lock is not counted as a skip."""
    _grow_wal(database)
    assert database.sqlite_path is not None
    size = _checkpointer(database).wal_bytes()
    checkpointer = WalCheckpointer(database.sqlite_path, size)
    other = CheckpointLock(database.sqlite_path.resolve())
    assert other.try_acquire()
    try:
        assert checkpointer.run_once() is None
        checkpointer.max_bytes = size - 1
        assert (checkpointer.run_once(), checkpointer.run_once()) == (None, None)
    finally:
        other.release()
    assert checkpointer.skipped == 2
    assert checkpointer.run_once() is True


def test_with_the_lock_off_each_worker_checkpoints_alone(database: Database) -> None:
    """SQLITE_WRITE_LOCK=off: no checkpoint lock either; a worker checkpoints whatever another holds."""
    _grow_wal(database)
    assert database.sqlite_path is not None
    other = CheckpointLock(database.sqlite_path.resolve(), "flock")
    assert other.try_acquire()
    try:
        assert WalCheckpointer(database.sqlite_path, LIMIT, lock_backend="off").run_once() is True
    finally:
        other.release()
