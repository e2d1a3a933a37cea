"""A COMMIT whose reply is lost is resolved, never guessed; every wait on PostgreSQL ends at the deadline.

Real PostgreSQL behind a fault-injecting proxy (`tests.support.pg_proxy`): the proxy forwards a COMMIT
and drops the reply, blackholes the network, or closes every connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc

from lastro import ServiceUnavailable
from lastro.db.attempts import BoundedAttempt
from lastro.db.engine import Database, DatabaseOptions
from lastro.db.outcome import PendingCommit, begin_write, resolve, sqlite_commit_in_doubt
from lastro.db.retry import RetryPolicy, StopAfterAttempt, StopAfterDelay
from lastro.db.transactions import Transactions
from lastro.errors import CommitOutcomeUnknown
from tests.conftest import POSTGRES_URL
from tests.support import libpq_trace
from tests.support.clock import FakeTime
from tests.support.databases import scratch_table
from tests.support.pg_proxy import PgProxy

pytestmark = pytest.mark.anyio

SQLITE_IOERR_FSYNC = 10 | (4 << 8)

DEADLINE = 2.0
MARGIN = 0.5  # what the answer may take beyond the deadline


@dataclass
class Setup:
    proxy: PgProxy
    transactions: Transactions
    table: str

    def names(self) -> list[str]:
        """The rows, read directly from the server (not through the proxy)."""
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            query = sql.SQL("SELECT name FROM {} ORDER BY name").format(sql.Identifier(self.table))
            return [row[0] for row in connection.execute(query)]

    def insert(self, name: str, calls: list[str] | None = None) -> Callable[[Connection], str]:
        def unit(connection: Connection) -> str:
            if calls is not None:
                calls.append(name)
            connection.execute(text(f"INSERT INTO {self.table} (name) VALUES (:name)"), {"name": name})
            return f"stored {name}"

        return unit


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def setup() -> Iterator[Setup]:
    """Transactions (deadline 2 s) on PostgreSQL through the proxy, and a table of their own."""
    with scratch_table("lastro_test_outcome", "name TEXT PRIMARY KEY") as table:
        proxy = PgProxy()
        proxy.start()
        options = DatabaseOptions(connect_timeout=1.0, pool_timeout=1.0)
        database = Database(proxy.url(POSTGRES_URL), options)
        policy = RetryPolicy(stop=StopAfterAttempt(5) | StopAfterDelay(DEADLINE))
        transactions = Transactions(database, retry=policy)
        try:
            yield Setup(proxy, transactions, table)
        finally:
            proxy.restore()
            transactions.close()
            database.dispose()
            proxy.stop()


async def test_applied_write_whose_reply_is_lost_returns_its_result_once(setup: Setup) -> None:
    """COMMIT applied, reply lost: the database is asked, the result is returned, the unit never re-runs."""
    calls: list[str] = []
    setup.proxy.lose_commit_replies(1)
    assert await setup.transactions.write(setup.insert("ada", calls)) == "stored ada"
    assert calls == ["ada"]
    assert setup.names() == ["ada"]
    assert setup.transactions.stats()["commit_outcomes"] == {"committed": 1}


async def test_aborted_commit_whose_reply_is_lost_runs_again_once(setup: Setup) -> None:
    """COMMIT refused by the server (deferred constraint), reply lost: told aborted, the unit re-runs once."""
    checked = f"{setup.table}_checked"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE TABLE {} (name TEXT REFERENCES {} DEFERRABLE INITIALLY DEFERRED)").format(
                sql.Identifier(checked), sql.Identifier(setup.table)
            )
        )
    calls: list[int] = []

    def unit(connection: Connection) -> str:
        calls.append(len(calls) + 1)
        if len(calls) == 1:  # a reference to nothing: the server refuses it at COMMIT
            connection.execute(text(f"INSERT INTO {checked} (name) VALUES ('nobody')"))
        connection.execute(text(f"INSERT INTO {setup.table} (name) VALUES ('ada')"))
        return "done"

    try:
        setup.proxy.lose_commit_replies(1)
        assert await setup.transactions.write(unit) == "done"
        assert calls == [1, 2]
        assert setup.names() == ["ada"]
        assert setup.transactions.stats()["commit_outcomes"] == {"aborted": 1}
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(checked)))


async def test_commit_nobody_can_confirm_is_commit_outcome_unknown(setup: Setup) -> None:
    """COMMIT sent, then the network blackholed: CommitOutcomeUnknown at the deadline, never a retry."""
    calls: list[str] = []
    setup.proxy.blackhole_after_commit()
    started = time.monotonic()
    with pytest.raises(CommitOutcomeUnknown) as unknown:
        await setup.transactions.write(setup.insert("ada", calls))
    assert time.monotonic() - started < DEADLINE + MARGIN
    assert unknown.value.detail == (
        "the database did not confirm the COMMIT within 2 s; read the resource before writing again"
    )
    assert calls == ["ada"]
    assert setup.names() == ["ada"]  # it was applied: a 503 (or a re-run) would have been a lie
    assert setup.transactions.stats()["commit_outcomes"] == {"unknown": 1}


async def test_connection_dropped_before_commit_runs_the_unit_again_once(setup: Setup) -> None:
    """The server never got COMMIT (connection closed mid-unit): the unit re-runs at once, stored once."""
    calls: list[int] = []

    def unit(connection: Connection) -> str:
        calls.append(len(calls) + 1)
        connection.execute(text(f"INSERT INTO {setup.table} (name) VALUES ('ada')"))
        if len(calls) == 1:
            setup.proxy.drop_all()
            connection.execute(text("SELECT 1"))
        return "done"

    assert await setup.transactions.write(unit) == "done"
    assert calls == [1, 2]
    assert setup.names() == ["ada"]
    stats = setup.transactions.stats()
    assert stats["reconnects"] == 1
    assert stats["retries"] == {}
    assert stats["breaker"]["consecutive_failures"] == 0


async def test_blackholed_unit_answers_503_at_the_deadline_and_never_commits(setup: Setup) -> None:
    """A unit stuck on a silent network ends in 503 at its deadline; restored later, it did not commit."""
    await setup.transactions.write(setup.insert("before"))
    setup.proxy.blackhole()
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as unavailable:
        await setup.transactions.write(setup.insert("during"))
    assert time.monotonic() - started < DEADLINE + MARGIN
    assert unavailable.value.detail == "the database did not answer within 2 s"
    setup.proxy.restore()
    assert await setup.transactions.write(setup.insert("after")) == "stored after"
    await anyio.sleep(0.2)  # time enough for a commit behind the caller's back to show
    assert setup.names() == ["after", "before"]


async def test_a_read_whose_connection_dropped_runs_again_at_once(setup: Setup) -> None:
    """A read unit, outside a transaction, whose connection the network closed re-runs on a new one."""
    calls: list[int] = []

    def unit(connection: Connection) -> int:
        calls.append(len(calls) + 1)
        if len(calls) == 1:
            setup.proxy.drop_all()
        return int(connection.execute(text(f"SELECT count(*) FROM {setup.table}")).scalar_one())

    assert await setup.transactions.read(unit) == 0
    stats = setup.transactions.stats()
    assert (calls, stats["reconnects"], stats["retries"]) == ([1, 2], 1, {})


async def test_blackholed_read_answers_503_at_the_deadline(setup: Setup) -> None:
    """A read unit stuck on a silent network ends in 503 at its deadline, like a write."""
    await setup.transactions.read(lambda connection: connection.execute(text("SELECT 1")).scalar())
    setup.proxy.blackhole()
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="did not answer within 2 s"):
        await setup.transactions.read(lambda connection: connection.execute(text("SELECT 1")).scalar())
    assert time.monotonic() - started < DEADLINE + MARGIN


async def test_read_units_are_read_only(setup: Setup) -> None:
    """A write attempted in a read unit is refused by the server, so re-running a read is always safe."""
    with pytest.raises(Exception, match="read-only transaction"):
        await setup.transactions.read(setup.insert("ada"))
    await setup.transactions.write(setup.insert("bob"))
    assert setup.names() == ["bob"]


async def test_probe_fails_within_its_deadline_on_a_silent_network(setup: Setup) -> None:
    """The probe on a blackholed network raises TimeoutError after its own deadline, not the network's."""
    await setup.transactions.probe(1.0)
    setup.proxy.blackhole()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"^the database did not answer within 0\.5 s$"):
        await setup.transactions.probe(0.5)
    assert time.monotonic() - started < 0.5 + MARGIN


async def test_probe_survives_a_dropped_connection(setup: Setup) -> None:
    """A probe whose connection was closed retries at once on a new one and succeeds."""
    await setup.transactions.probe(1.0)
    assert setup.proxy.drop_all() >= 1
    await setup.transactions.probe(1.0)


# --- SQLite: a failed COMMIT is not applied, unless an I/O error ended the transaction ------------------


def test_sqlite_io_error_that_ended_the_transaction_is_in_doubt() -> None:
    """An I/O error at COMMIT with the transaction gone may have reached the WAL: the outcome is unknown."""
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorcode = SQLITE_IOERR_FSYNC  # type: ignore[attr-defined]
    assert sqlite_commit_in_doubt(error, in_transaction=False)
    assert not sqlite_commit_in_doubt(error, in_transaction=True)  # still open: rolled back, not applied


def test_sqlite_other_commit_failures_are_not_in_doubt() -> None:
    """A COMMIT refused for a constraint or a full disk was not applied."""
    for message, code in (("FOREIGN KEY constraint failed", 787), ("database or disk is full", 13)):
        error = sqlite3.IntegrityError(message)
        error.sqlite_errorcode = code  # type: ignore[attr-defined]
        assert not sqlite_commit_in_doubt(error, in_transaction=False)


async def test_sqlite_commit_refused_applies_nothing_and_is_not_retried(tmp_path: Path) -> None:
    """A COMMIT refused by a deferred foreign key raises once and stores nothing, inline or batched."""
    database = Database(f"sqlite:///{tmp_path / 'outcome.db'}")
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE parents (name TEXT PRIMARY KEY)"))
        connection.execute(
            text("CREATE TABLE children (name TEXT REFERENCES parents DEFERRABLE INITIALLY DEFERRED)")
        )
    transactions = Transactions(database)
    calls: list[int] = []

    def orphan(connection: Connection) -> None:
        calls.append(1)
        connection.execute(text("INSERT INTO children (name) VALUES ('nobody')"))

    try:
        with pytest.raises(sa_exc.IntegrityError):
            await transactions.write(orphan)
        assert calls == [1]
        results = await asyncio.gather(
            *(transactions.write(orphan) for _ in range(4)), return_exceptions=True
        )
        assert all(isinstance(result, sa_exc.IntegrityError) for result in results)
        assert len(calls) <= 1 + 4 * 2  # a failed batch runs each unit once more alone, never more
        assert (
            await transactions.read(lambda c: c.execute(text("SELECT count(*) FROM children")).scalar()) == 0
        )
        assert transactions.stats()["commit_outcomes"] == {}
    finally:
        transactions.close()
        database.dispose()


def _sqlite_error(message: str, code: int | None) -> Exception:
    error = sqlite3.OperationalError(message)
    if code is not None:
        error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("message", "code", "in_doubt"),
    [
        ("no such table: t", SQLITE_IOERR_FSYNC, True),  # the code decides, whatever the message says
        ("disk I/O error", 1, False),
        ("Disk I/O error", None, True),  # a driver without codes: the message tells
        ("database is locked", None, False),
    ],
)
def test_an_io_error_is_told_by_its_code_else_by_its_message(
    message: str, code: int | None, in_doubt: bool
) -> None:
    """The result code says whether COMMIT met an I/O error; without one, SQLite's message does."""
    error = _sqlite_error(message, code)
    assert sqlite_commit_in_doubt(error, in_transaction=False) is in_doubt
    wrapped = sa_exc.OperationalError("COMMIT", None, error)
    assert sqlite_commit_in_doubt(wrapped, in_transaction=False) is in_doubt


# --- asking PostgreSQL what became of a transaction -----------------------------------------------------


@pytest.fixture
def pg_table() -> Iterator[str]:
    with scratch_table("lastro_test_resolve", "name TEXT") as table:
        yield table


def _connect(timeout: float) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=max(1, int(timeout)))


def _insert(connection: psycopg.Connection[tuple[object, ...]], table: str) -> None:
    connection.execute(sql.SQL("INSERT INTO {} VALUES ('x')").format(sql.Identifier(table)))


@pytest.mark.postgres
def test_a_write_begins_read_write_with_its_id_and_backend() -> None:
    """`begin_write` opens a READ WRITE transaction on a read-only session, with its id and server process."""
    options = "-c default_transaction_read_only=on"
    with psycopg.connect(POSTGRES_URL, autocommit=True, options=options) as connection:
        pending = begin_write(connection)
        assert connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert connection.execute("SHOW transaction_read_only").fetchone() == ("off",)
        assert connection.execute("SELECT pg_current_xact_id()::text").fetchone() == (pending.xid,)
        assert pending.backend_pid == connection.info.backend_pid
        connection.rollback()


@pytest.mark.postgres
def test_a_write_begins_and_learns_its_id_in_one_round_trip(tmp_path: Path) -> None:
    """`begin_write` sends one message, a simple query with both statements, and reads one reply."""
    trace = tmp_path / "libpq.trace"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection, trace.open("w") as file:
        connection.pgconn.trace(file.fileno())
        begin_write(connection)
        connection.pgconn.untrace()
        connection.rollback()
    assert libpq_trace.sent(trace) == ["Query"]
    assert [kind for sender, kind in libpq_trace.messages(trace) if sender == "B"][-1] == "ReadyForQuery"


@pytest.mark.postgres
def test_a_committed_transaction_resolves_committed(pg_table: str) -> None:
    """A transaction that did commit is reported committed."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        pending = begin_write(connection)
        _insert(connection, pg_table)
        connection.commit()
    assert resolve(_connect, pending, BoundedAttempt(time.monotonic() + 0.9)) == "committed"  # under 1 s left


@pytest.mark.postgres
def test_a_transaction_still_open_is_ended_and_resolves_aborted(pg_table: str) -> None:
    """A transaction its backend still holds open is ended by terminating the backend: it was not applied."""
    connection = psycopg.connect(POSTGRES_URL, autocommit=True)
    try:
        pending = begin_write(connection)
        _insert(connection, pg_table)
        assert resolve(_connect, pending, BoundedAttempt(time.monotonic() + 5)) == "aborted"
        with pytest.raises(psycopg.OperationalError):
            connection.execute("SELECT 1")
    finally:
        connection.close()
    with psycopg.connect(POSTGRES_URL) as reader:
        count = reader.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(pg_table))).fetchone()
    assert count == (0,)


@pytest.mark.postgres
def test_a_rolled_back_transaction_resolves_aborted(pg_table: str) -> None:
    """A transaction that rolled back is reported aborted, so the unit may run again."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        pending = begin_write(connection)
        _insert(connection, pg_table)
        connection.rollback()
    assert resolve(_connect, pending, BoundedAttempt(time.monotonic() + 5)) == "aborted"


@pytest.mark.postgres
def test_nothing_is_asked_once_the_attempt_is_abandoned_or_out_of_time(pg_table: str) -> None:
    """An abandoned attempt, or one past its deadline, resolves to unknown without connecting."""
    connections: list[float] = []

    def counting(timeout: float) -> psycopg.Connection[tuple[object, ...]]:
        connections.append(timeout)
        return _connect(timeout)

    abandoned = BoundedAttempt(time.monotonic() + 5)
    abandoned.abandon()
    pending = PendingCommit("1", 1)
    assert resolve(counting, pending, abandoned) is None
    assert resolve(counting, pending, BoundedAttempt(time.monotonic() - 1)) is None
    assert connections == []


def test_no_answer_before_the_deadline_is_unknown() -> None:
    """A server that cannot be reached until the deadline leaves the outcome unknown."""
    clock = FakeTime()
    attempt = BoundedAttempt(clock.now + 1.0, clock=clock.clock)

    def unreachable(timeout: float) -> psycopg.Connection[tuple[object, ...]]:
        clock.now += timeout  # the connect timeout runs out, and with it the deadline
        raise psycopg.OperationalError("connection timeout expired")

    assert resolve(unreachable, PendingCommit("1", 1), attempt) is None


async def test_a_connection_dropped_twice_is_retried_as_unreachable(setup: Setup) -> None:
    """Only the first drop re-runs the unit at once; the second is a retry, and neither opens the breaker."""
    calls: list[int] = []

    def unit(connection: Connection) -> str:
        calls.append(len(calls) + 1)
        if len(calls) <= 2:
            setup.proxy.drop_all()
            connection.execute(text("SELECT 1"))
        return "done"

    assert await setup.transactions.write(unit) == "done"
    stats = setup.transactions.stats()
    assert (calls, stats["reconnects"], stats["retries"]) == ([1, 2, 3], 1, {"unreachable": 1})
    assert stats["breaker"]["consecutive_failures"] == 0
