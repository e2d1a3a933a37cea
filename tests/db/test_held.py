"""HeldConnections: a unit thread keeps its pooled PostgreSQL connection only while it is good to reuse.

Each test runs on the test's own thread, as a unit thread would, against the real server.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from lastro.db.engine import Database, DatabaseOptions
from lastro.db.held import HeldConnections
from tests.conftest import POSTGRES_URL
from tests.support.clock import FakeTime

pytestmark = pytest.mark.postgres


@pytest.fixture
def database() -> Iterator[Database]:
    database = Database(POSTGRES_URL, DatabaseOptions(pool_size=2, max_overflow=0))
    yield database
    database.dispose()


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def held(database: Database, time: FakeTime) -> HeldConnections:
    return HeldConnections(database.engine, 2, hold=1.0, clock=time.clock)


def backend(connection: Connection) -> int:
    """The connection's server process id, read in a transaction of its own, as a unit reads."""
    with connection.begin():
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def test_a_connection_is_taken_in_autocommit(held: HeldConnections) -> None:
    """take() checks a connection out with the AUTOCOMMIT isolation level set."""
    connection = held.take()
    assert connection.get_execution_options()["isolation_level"] == "AUTOCOMMIT"
    held.release()


def test_a_kept_connection_serves_the_next_take(held: HeldConnections, database: Database) -> None:
    """done(keep=True) leaves the connection checked out, and the next take() returns it as it is."""
    first = held.take()
    held.done(keep=True)
    assert database.pool_status()["checked_out"] == 1
    assert held.take() is first
    held.release()
    assert database.pool_status()["checked_out"] == 0


def test_a_connection_not_kept_goes_back_to_the_pool(held: HeldConnections, database: Database) -> None:
    """done(keep=False) checks the connection in, back in its default isolation level."""
    connection = held.take()
    held.done(keep=False)
    assert database.pool_status()["checked_out"] == 0
    assert connection.closed
    with database.engine.connect() as plain:
        assert plain.get_execution_options().get("isolation_level") is None
        assert plain.connection.driver_connection.autocommit is False  # type: ignore[union-attr]


def test_a_connection_is_not_kept_past_its_hold(held: HeldConnections, time: FakeTime) -> None:
    """Once `hold` seconds have passed since its check-out, the connection goes back at the next take."""
    first = held.take()
    held.done(keep=True)
    time.now += 1.0
    second = held.take()
    assert second is not first
    assert first.closed
    held.release()


def test_a_unit_that_changed_the_options_does_not_pass_them_on(held: HeldConnections) -> None:
    """Execution options a unit set on its connection end with it: the connection is not kept."""
    first = held.take()
    first.execution_options(logging_token="unit-1")
    held.done(keep=True)
    second = held.take()
    assert second is not first
    assert "logging_token" not in second.get_execution_options()
    held.release()


def test_a_connection_left_in_a_transaction_is_not_kept(held: HeldConnections) -> None:
    """A connection still in a transaction goes back to the pool, which rolls it back."""
    first = held.take()
    first.begin()
    held.done(keep=True)
    assert first.closed
    held.release()


def test_an_invalidated_connection_is_not_kept(held: HeldConnections) -> None:
    """A connection invalidated during its unit is not handed to the next one."""
    first = held.take()
    first.invalidate()
    held.done(keep=True)
    second = held.take()
    assert second is not first
    assert backend(second) > 0
    held.release()


def test_an_invalidation_in_the_pool_ends_every_held_connection(
    held: HeldConnections, database: Database
) -> None:
    """After the pool reports any connection invalidated, a held connection checked out before goes back
    at the next take, and the pool replaces it (as SQLAlchemy replaces connections older than one that
    failed)."""
    kept = held.take()
    pid = backend(kept)
    held.done(keep=True)
    with database.engine.connect() as other:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend(other),))
        with pytest.raises(DBAPIError) as failed:
            backend(other)
        assert failed.value.connection_invalidated
    assert not kept.invalidated  # nothing told it: only its age does
    replacement = held.take()
    assert replacement is not kept
    assert backend(replacement) != pid
    held.release()


def test_a_negative_hold_is_refused(database: Database) -> None:
    """A negative hold is refused with the value given."""
    with pytest.raises(ValueError, match="hold must be >= 0 seconds, got -1"):
        HeldConnections(database.engine, 2, hold=-1)


def test_a_connection_is_not_kept_when_the_pool_has_none_left(
    held: HeldConnections, database: Database
) -> None:
    """Once the pool's last connection is out, a held one goes back: a check-out from outside the units
    waits for one unit at most, never for a thread that keeps its connection."""
    first = held.take()
    held.done(keep=True)
    with database.engine.connect():
        held.done(keep=True)  # the next unit ends while the pool has nothing left
        assert first.closed
    assert held.take() is not first
    held.release()
