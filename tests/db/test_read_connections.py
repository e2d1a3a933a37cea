"""ReadConnections: inline reads keep one connection per thread, and give it up after a database error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc

from lastro.db.engine import Database
from lastro.db.transactions import ReadConnections


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'reads.db'}")
    yield database
    database.dispose()


def answer(connection: Connection) -> int:
    return int(connection.execute(text("SELECT 42")).scalar_one())


def broken(connection: Connection) -> None:
    connection.execute(text("SELECT * FROM no_such_table"))


def checked_out(database: Database) -> int:
    return int(database.engine.pool.checkedout())  # type: ignore[attr-defined]


def test_reads_on_one_thread_share_one_connection(database: Database) -> None:
    """Many reads in a row hold one connection out of the pool, not one each."""
    reads = ReadConnections(database)
    assert [reads.run(answer) for _ in range(5)] == [42] * 5
    assert checked_out(database) == 1
    reads.close()
    assert checked_out(database) == 0


def test_each_thread_has_its_own_connection(database: Database) -> None:
    """A second thread reading at the same time never shares the first thread's connection."""
    reads = ReadConnections(database)
    reads.run(answer)
    other = threading.Thread(target=reads.run, args=(answer,))
    other.start()
    other.join()
    assert checked_out(database) == 2
    reads.close()
    assert checked_out(database) == 0


def test_a_database_error_gives_the_connection_up(database: Database) -> None:
    """After a failed read the next one runs on a fresh connection."""
    reads = ReadConnections(database)
    reads.run(answer)
    with pytest.raises(sa_exc.OperationalError):
        reads.run(broken)
    assert checked_out(database) == 0
    assert reads.run(answer) == 42
    reads.close()


def test_an_application_error_keeps_the_connection(database: Database) -> None:
    """An exception of the application's own (not the database's) rolls back and keeps the connection."""
    reads = ReadConnections(database)

    def refuse(connection: Connection) -> None:
        connection.execute(text("SELECT 1"))
        raise LookupError("not found")

    with pytest.raises(LookupError):
        reads.run(refuse)
    assert checked_out(database) == 1
    assert reads.run(answer) == 42
    reads.close()
