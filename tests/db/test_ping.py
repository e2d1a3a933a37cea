"""`IdlePing` on a real PostgreSQL pool: a ping only after an idle spell, a dead connection replaced unseen,
and one that died within the window retried by the unit of work."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Connection, text

from lastro.db.engine import Database, DatabaseOptions
from lastro.db.ping import IdlePing
from lastro.db.retry import RetryPolicy, StopAfterAttempt
from lastro.db.transactions import Transactions
from tests.conftest import POSTGRES_URL
from tests.support.clock import FakeTime

pytestmark = pytest.mark.postgres


@pytest.fixture
def pinged(fake_time: FakeTime) -> Iterator[tuple[Database, IdlePing]]:
    """A pool of one connection, pinged after 1 s idle on the fake clock."""
    database = Database(POSTGRES_URL, DatabaseOptions(pool_pre_ping=False, pool_size=1, max_overflow=0))
    ping = IdlePing(1.0, clock=fake_time.clock)
    ping.install(database.engine)
    yield database, ping
    database.dispose()


def _backend_pid(database: Database) -> int:
    with database.engine.connect() as connection:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return pid


def _terminate(pid: int) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.parametrize(
    ("idle", "pings"), [(0.5, 0), (1.0, 1)], ids=["within-the-window", "past-the-window"]
)
def test_a_connection_is_pinged_only_after_idling_past_the_window(
    pinged: tuple[Database, IdlePing], fake_time: FakeTime, idle: float, pings: int
) -> None:
    """Checked out again within `after` seconds, it goes out without a round trip; later, with one ping."""
    database, ping = pinged
    first = _backend_pid(database)
    fake_time.now += idle
    assert _backend_pid(database) == first
    assert ping.pings == pings


def test_an_idle_connection_the_server_dropped_is_replaced_unseen(
    pinged: tuple[Database, IdlePing], fake_time: FakeTime
) -> None:
    """The ping finds it dead: the pool connects again and the caller never sees the error."""
    database, ping = pinged
    first = _backend_pid(database)
    _terminate(first)
    fake_time.now += 5.0
    assert _backend_pid(database) != first
    assert ping.pings == 1


def test_after_zero_pings_at_every_checkout(fake_time: FakeTime) -> None:
    """`after=0` is SQLAlchemy's pre-ping: every checkout pings."""
    database = Database(POSTGRES_URL, DatabaseOptions(pool_pre_ping=False, pool_size=1, max_overflow=0))
    ping = IdlePing(0.0, clock=fake_time.clock)
    ping.install(database.engine)
    try:
        for _ in range(3):
            _backend_pid(database)
        assert ping.pings == 2  # the first checkout had a new connection
    finally:
        database.dispose()


def test_a_negative_window_is_refused() -> None:
    """A window below zero is a ValueError that names it."""
    with pytest.raises(ValueError, match="after must be >= 0"):
        IdlePing(-1.0)


def test_a_postgres_database_pings_only_after_a_second_idle() -> None:
    """Database builds its PostgreSQL pool with IdlePing(1 s) when pre-ping is on, and none when off."""
    on, off = Database(POSTGRES_URL), Database(POSTGRES_URL, DatabaseOptions(pool_pre_ping=False))
    try:
        assert on.idle_ping is not None
        assert on.idle_ping.after == 1.0
        assert off.idle_ping is None
        assert not on.engine.pool._pre_ping  # SQLAlchemy's own ping, at every checkout, stays off
    finally:
        on.dispose()
        off.dispose()


@pytest.mark.anyio
async def test_a_unit_on_a_connection_that_died_within_the_window_is_run_again(fake_time: FakeTime) -> None:
    """Not pinged, the dead connection fails the unit's first statement; it runs at once on a new one."""
    database = Database(POSTGRES_URL, DatabaseOptions(pool_size=1, max_overflow=0))
    policy = RetryPolicy(stop=StopAfterAttempt(3), sleep=fake_time.sleep, clock=fake_time.clock)
    transactions = Transactions(database, retry=policy)
    runs: list[int] = []

    def backend_pid(connection: Connection) -> int:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        runs.append(pid)
        return pid

    try:
        first = await transactions.read(backend_pid)
        _terminate(first)
        second = await transactions.read(backend_pid)
        assert second != first
        assert runs == [first, second]  # the failed attempt died before the statement's result
        assert transactions.reconnects == 1
        assert not fake_time.sleeps  # at once, not a retry after a wait
        assert database.idle_ping is not None
        assert database.idle_ping.pings == 0
    finally:
        transactions.close()
        database.dispose()
