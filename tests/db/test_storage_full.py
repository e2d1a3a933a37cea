"""A full disk under SQLite: inline and batched writes both raise StorageFull, reads go on, nothing is lost.

The database lives on a small tmpfs that a filler file fills up; "another worker" holding the write lock
is a second WriteLock on the same file, which sends the writes to the writer thread to be batched.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from lastro.db.engine import Database
from lastro.db.transactions import Transactions
from lastro.db.write_lock import WriteLock
from lastro.errors import StorageFull
from tests.support.tmpfs import fill, tmpfs

pytestmark = pytest.mark.anyio

ROW = 64 * 1024  # bytes a write adds: a few WAL pages, more than a full tmpfs has left


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[tuple[Transactions, Path]]:
    """Transactions on a database whose 8 MiB tmpfs is full; the filler file is yielded to free space."""
    with tmpfs(tmp_path / "disk", size_mib=8) as disk:
        database = Database(f"sqlite:///{disk / 'app.db'}")
        with database.engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)"))
            connection.execute(text("INSERT INTO t (body) VALUES ('before')"))
        transactions = Transactions(database)
        filler = fill(disk)
        try:
            yield transactions, filler
        finally:
            transactions.close()
            database.dispose()


def insert(connection: Connection) -> None:
    connection.execute(text("INSERT INTO t (body) VALUES (randomblob(:size))"), {"size": ROW})


async def write_until_full(transactions: Transactions) -> StorageFull:
    """The StorageFull of the first write that finds no space: the first may fit in the WAL's own pages."""
    for _ in range(20):
        try:
            await transactions.write(insert)
        except StorageFull as error:
            return error
    raise AssertionError("20 writes found space on a full disk")


def count(connection: Connection) -> int:
    return int(connection.execute(text("SELECT count(*) FROM t")).scalar_one())


async def test_an_inline_write_raises_storage_full(full_disk: tuple[Transactions, Path]) -> None:
    """A write run inline on a full disk raises StorageFull, saying the database's disk is full."""
    transactions, _ = full_disk
    assert "disk is full" in (await write_until_full(transactions)).detail


async def test_batched_writes_each_raise_storage_full(full_disk: tuple[Transactions, Path]) -> None:
    """Writes queued while another worker writes, then run as a batch, each raise StorageFull."""
    transactions, _ = full_disk
    assert transactions.database.sqlite_path is not None
    other_worker = WriteLock(transactions.database.sqlite_path.resolve())
    assert other_worker.acquire()
    threading.Timer(0.2, other_worker.release).start()
    try:
        outcomes = await asyncio.gather(
            *(transactions.write(insert) for _ in range(20)), return_exceptions=True
        )
    finally:
        other_worker.close()
    assert all(isinstance(outcome, StorageFull) for outcome in outcomes), outcomes
    assert transactions.stats()["writes"]["inline"] == 0


async def test_reads_go_on_and_writes_come_back_once_space_is_freed(
    full_disk: tuple[Transactions, Path],
) -> None:
    """While full, reads answer; once the filler is gone, a write succeeds and nothing was lost."""
    transactions, filler = full_disk
    await write_until_full(transactions)
    before = await transactions.read(count)
    filler.unlink()
    await transactions.write(insert)
    assert await transactions.read(count) == before + 1
    integrity = await transactions.read(lambda c: c.exec_driver_sql("PRAGMA integrity_check").scalar())
    assert integrity == "ok"
