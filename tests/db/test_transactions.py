"""Transactions: units of work on SQLite and PostgreSQL, with retry of the whole unit and the breaker.

Transient failures are real: a SQLite write lock held by another connection, a PostgreSQL error raised by
the server with SQLSTATE 40001. Sleep and clock are injected, so no test waits for a backoff.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc

from lastro import ServiceUnavailable
from lastro.db import sqlite
from lastro.db.breaker import BreakerState, CircuitBreaker
from lastro.db.engine import Database, DatabaseOptions
from lastro.db.retry import RetryPolicy, Stop, StopAfterAttempt, StopAfterDelay
from lastro.db.transactions import Transactions
from tests.conftest import POSTGRES_URL
from tests.db.conftest import Backend
from tests.support.clock import FakeTime

pytestmark = pytest.mark.anyio


def _insert(backend: Backend, name: str) -> Callable[[Connection], None]:
    def unit(connection: Connection) -> None:
        connection.execute(text(f"INSERT INTO {backend.table} (name) VALUES (:name)"), {"name": name})

    return unit


async def test_write_commits(backend: Backend, transactions: Transactions) -> None:
    """What a write unit did is committed when it returns."""
    await transactions.write(_insert(backend, "ada"))
    assert backend.names() == ["ada"]


async def test_unit_result_is_returned(backend: Backend, transactions: Transactions) -> None:
    """The unit's return value is the result of read() and write()."""
    await transactions.write(_insert(backend, "ada"))
    count = await transactions.read(
        lambda connection: connection.execute(text(f"SELECT count(*) FROM {backend.table}")).scalar_one()
    )
    assert count == 1


def _insert_name(connection: Connection, table: str, name: str, *, suffix: str = "") -> str:
    connection.execute(text(f"INSERT INTO {table} (name) VALUES (:name)"), {"name": name + suffix})
    return name + suffix


def _count(connection: Connection, table: str) -> int:
    count: int = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    return count


async def test_arguments_after_the_connection_reach_the_unit(
    backend: Backend, transactions: Transactions
) -> None:
    """read(work, *args, **kwargs) and write(...) call work(connection, *args, **kwargs)."""
    assert await transactions.write(_insert_name, backend.table, "ada", suffix="!") == "ada!"
    assert await transactions.write(_insert_name, backend.table, name="bob") == "bob"
    assert await transactions.read(_count, backend.table) == 2
    assert backend.names() == ["ada!", "bob"]


async def test_a_retried_unit_runs_again_with_its_arguments(
    backend: Backend, transactions: Transactions
) -> None:
    """After a transient failure the unit runs again with the same arguments."""
    seen: list[str] = []

    def unit(connection: Connection, name: str) -> None:
        seen.append(name)
        _insert_name(connection, backend.table, name)
        if len(seen) == 1:
            raise backend.transient_failure(connection)

    await transactions.write(unit, "ada")
    assert seen == ["ada", "ada"]
    assert backend.names() == ["ada"]


async def test_exception_rolls_back_and_propagates(backend: Backend, transactions: Transactions) -> None:
    """An application error in the unit rolls everything back and reaches the caller unchanged, once."""
    calls: list[int] = []

    def unit(connection: Connection) -> None:
        calls.append(1)
        _insert(backend, "ada")(connection)
        raise LookupError("order 7 not found")

    with pytest.raises(LookupError, match="order 7 not found"):
        await transactions.write(unit)
    assert calls == [1]
    assert backend.names() == []


async def test_permanent_database_error_is_not_retried(backend: Backend, transactions: Transactions) -> None:
    """A duplicate key is raised as is, without retry, and does not count against the database."""
    await transactions.write(_insert(backend, "ada"))
    with pytest.raises(sa_exc.IntegrityError):
        await transactions.write(_insert(backend, "ada"))
    assert transactions.retries == {}
    assert transactions.breaker.state is BreakerState.CLOSED


async def test_transient_failure_reruns_the_whole_unit(
    backend: Backend, transactions: Transactions, fake_time: FakeTime
) -> None:
    """After a transient failure the unit runs again from its start; the first attempt's write is gone."""
    calls: list[int] = []

    def unit(connection: Connection) -> str:
        calls.append(len(calls) + 1)
        _insert(backend, f"attempt-{len(calls)}")(connection)
        if len(calls) == 1:
            raise backend.transient_failure(connection)
        return "done"

    assert await transactions.write(unit) == "done"
    assert calls == [1, 2]
    assert backend.names() == ["attempt-2"]
    assert len(fake_time.sleeps) == 1
    assert transactions.retries == {"contention": 1}


async def test_gives_up_after_the_policy_with_service_unavailable(
    backend: Backend, transactions: Transactions
) -> None:
    """A unit that keeps failing transiently ends in ServiceUnavailable (503) after the last attempt."""
    calls: list[int] = []

    def unit(connection: Connection) -> None:
        calls.append(1)
        raise backend.transient_failure(connection)

    with pytest.raises(ServiceUnavailable, match="did not complete the request") as raised:
        await transactions.write(unit)
    assert raised.value.retry_after >= 1
    assert len(calls) == 3
    assert transactions.gave_up == 1
    assert transactions.stats()["gave_up"] == 1


async def test_contention_does_not_open_the_breaker(backend: Backend, transactions: Transactions) -> None:
    """Lock contention means the database answered: the breaker stays closed."""

    def unit(connection: Connection) -> None:
        raise backend.transient_failure(connection)

    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            await transactions.write(unit)
    assert transactions.breaker.state is BreakerState.CLOSED


# --- the breaker on an unreachable SQLite file ----------------------------------------------------------


@pytest.fixture
def vanishing(tmp_path: Path, fake_time: FakeTime) -> Iterator[tuple[Transactions, Path]]:
    """Transactions (breaker threshold 3, reset after 2 s) on a SQLite file that the test may move away."""
    path = tmp_path / "vanishing.db"
    database = Database(f"sqlite:///{path}")
    policy = RetryPolicy(stop=StopAfterAttempt(5), sleep=fake_time.sleep, clock=fake_time.clock)
    breaker = CircuitBreaker(threshold=3, reset_after=2.0, clock=fake_time.clock)
    transactions = Transactions(database, retry=policy, breaker=breaker)
    yield transactions, path
    transactions.close()
    database.dispose()


def _select_one(connection: Connection) -> int:
    return int(connection.execute(text("SELECT 1")).scalar_one())


async def test_breaker_opens_when_the_sqlite_file_is_gone(
    vanishing: tuple[Transactions, Path], tmp_path: Path
) -> None:
    """Failing to open a moved-away file counts as unreachable; the threshold-th failure opens the breaker."""
    transactions, path = vanishing
    shutil.move(path, tmp_path / "elsewhere.db")
    with pytest.raises(ServiceUnavailable):
        await transactions.write(_select_one)
    assert transactions.breaker.state is BreakerState.OPEN
    assert transactions.retries == {"unreachable": 3}  # the fourth attempt met the open breaker


async def test_open_breaker_fails_requests_at_once(
    vanishing: tuple[Transactions, Path], tmp_path: Path, fake_time: FakeTime
) -> None:
    """Once open, a request raises ServiceUnavailable without waiting or touching the database."""
    transactions, path = vanishing
    shutil.move(path, tmp_path / "elsewhere.db")
    with pytest.raises(ServiceUnavailable):
        await transactions.write(_select_one)
    sleeps_before = list(fake_time.sleeps)
    failures_before = transactions.breaker.snapshot()["consecutive_failures"]
    calls: list[int] = []
    with pytest.raises(ServiceUnavailable, match="database is unavailable") as raised:
        await transactions.read(lambda connection: calls.append(1))
    assert raised.value.retry_after >= 1
    assert calls == []
    assert fake_time.sleeps == sleeps_before
    assert transactions.breaker.snapshot()["consecutive_failures"] == failures_before


async def test_service_recovers_once_the_file_is_back(
    vanishing: tuple[Transactions, Path], tmp_path: Path, fake_time: FakeTime
) -> None:
    """With the file back and reset_after elapsed, the trial call succeeds and closes the breaker."""
    transactions, path = vanishing
    shutil.move(path, tmp_path / "elsewhere.db")
    with pytest.raises(ServiceUnavailable):
        await transactions.write(_select_one)
    shutil.move(tmp_path / "elsewhere.db", path)
    fake_time.now += 2.0
    assert await transactions.write(_select_one) == 1
    assert transactions.breaker.state is BreakerState.CLOSED


# --- many concurrent writers on SQLite ------------------------------------------------------------------


async def test_concurrent_writes_on_sqlite_never_meet_a_lock_error(tmp_path: Path) -> None:
    """Hundreds of read-modify-write units from two engines (two workers' worth) all commit, no retries."""
    path = tmp_path / "busy.db"
    databases = [Database(f"sqlite:///{path}"), Database(f"sqlite:///{path}")]
    with databases[0].engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        connection.execute(text("INSERT INTO counter VALUES (1, 0)"))
    workers = [Transactions(database) for database in databases]

    def increment(connection: Connection) -> None:
        n = connection.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one()
        connection.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})

    def read(connection: Connection) -> int:
        return int(connection.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one())

    try:
        writes = [workers[i % 2].write(increment) for i in range(300)]
        reads = [workers[i % 2].read(read) for i in range(100)]
        await asyncio.gather(*writes, *reads)
        assert await workers[0].read(read) == 300  # no lost update: each write held the lock throughout
        assert [worker.stats()["retries"] for worker in workers] == [{}, {}]
    finally:
        for worker in workers:
            worker.close()
        for database in databases:
            database.dispose()


# --- where each unit runs -------------------------------------------------------------------------------


def _thread_name(_: Connection) -> str:
    return threading.current_thread().name


async def test_sqlite_writes_go_through_the_writer(tmp_path: Path) -> None:
    """A SQLite write is counted by the worker's writer, which ran it in a transaction of its own."""
    transactions = Transactions(Database(f"sqlite:///{tmp_path / 'w.db'}"))
    try:
        await transactions.write(_select_one)
        assert transactions.stats()["writes"] == {"units": 1, "inline": 1, "transactions": 1, "queued": 0}
    finally:
        transactions.close()
        transactions.database.dispose()


async def test_sqlite_reads_run_on_the_event_loop_by_default(tmp_path: Path) -> None:
    """A SQLite read runs inline, on the event loop's thread."""
    transactions = Transactions(Database(f"sqlite:///{tmp_path / 'r.db'}"))
    try:
        assert await transactions.read(_thread_name) == threading.current_thread().name
    finally:
        transactions.close()
        transactions.database.dispose()


async def test_sqlite_reads_run_on_a_thread_when_inline_reads_are_off(tmp_path: Path) -> None:
    """With inline_reads=False a SQLite read runs on a read thread, in a transaction that sees the data."""
    transactions = Transactions(Database(f"sqlite:///{tmp_path / 'r.db'}"), inline_reads=False)
    try:
        await transactions.write(lambda connection: connection.execute(text("CREATE TABLE t (n INTEGER)")))
        await transactions.write(lambda connection: connection.execute(text("INSERT INTO t VALUES (7)")))
        assert (await transactions.read(_thread_name)).startswith("lastro-db-read")
        assert await transactions.read(lambda c: c.execute(text("SELECT n FROM t")).scalar_one()) == 7
        assert transactions.stats()["writes"]["units"] == 2
    finally:
        transactions.close()
        transactions.database.dispose()


@pytest.mark.postgres
async def test_postgres_units_run_on_the_pool_threads() -> None:
    """On PostgreSQL reads and writes both run on lastro's database threads, and nothing counts writes."""
    transactions = Transactions(Database(POSTGRES_URL))
    try:
        assert (await transactions.read(_thread_name)).startswith("lastro-db_")
        assert (await transactions.write(_thread_name)).startswith("lastro-db_")
        assert "writes" not in transactions.stats()
    finally:
        transactions.close()
        transactions.database.dispose()


@pytest.mark.parametrize(
    ("stop", "deadline"),
    [
        (StopAfterDelay(3.0), 3.0),
        (StopAfterAttempt(3) | StopAfterDelay(1.5), 1.5),
        (StopAfterDelay(4.0) | StopAfterDelay(2.5), 2.5),
        (StopAfterAttempt(3), 5.0),
        (StopAfterAttempt(3) | StopAfterAttempt(4), 5.0),
    ],
)
def test_a_unit_deadline_is_the_retry_policy_delay(tmp_path: Path, stop: Stop, deadline: float) -> None:
    """The deadline is the shortest StopAfterDelay of the policy, or 5 s when it has none."""
    transactions = Transactions(Database(f"sqlite:///{tmp_path / 'd.db'}"), retry=RetryPolicy(stop=stop))
    try:
        assert transactions.deadline == deadline
    finally:
        transactions.close()
        transactions.database.dispose()


async def test_no_free_pooled_connection_is_503_at_once(tmp_path: Path, fake_time: FakeTime) -> None:
    """A unit that finds the pool exhausted fails with ServiceUnavailable, not retried, breaker closed."""
    options = DatabaseOptions(pool_size=1, max_overflow=0, pool_timeout=0.01)
    database = Database(f"sqlite:///{tmp_path / 'pool.db'}", options)
    policy = RetryPolicy(stop=StopAfterAttempt(3), sleep=fake_time.sleep, clock=fake_time.clock)
    transactions = Transactions(database, retry=policy, inline_reads=False)
    held = database.engine.connect()
    try:
        with pytest.raises(ServiceUnavailable) as raised:
            await transactions.read(_select_one)
        assert raised.value.detail.startswith("the database is overloaded: QueuePool limit of size 1")
        assert (fake_time.sleeps, transactions.retries) == ([], {})
        assert transactions.breaker.state is BreakerState.CLOSED
    finally:
        held.close()
        transactions.close()
        database.dispose()


async def test_stats_start_at_zero(backend: Backend, transactions: Transactions) -> None:
    """A new Transactions reports no retries, no give-ups, no reconnects and a closed breaker."""
    stats = transactions.stats()
    assert (stats["retries"], stats["gave_up"], stats["reconnects"]) == ({}, 0, 0)
    assert stats["breaker"] == {"state": "closed", "consecutive_failures": 0, "last_error": None}


async def test_the_probe_reaches_a_sqlite_database(tmp_path: Path) -> None:
    """probe() returns once the database answered."""
    transactions = Transactions(Database(f"sqlite:///{tmp_path / 'p.db'}"))
    try:
        await transactions.probe(5.0)
    finally:
        transactions.close()
        transactions.database.dispose()


async def test_a_probe_of_a_missing_sqlite_file_raises(
    vanishing: tuple[Transactions, Path], tmp_path: Path
) -> None:
    """probe() raises the driver's error when the file is gone."""
    transactions, path = vanishing
    shutil.move(path, tmp_path / "elsewhere.db")
    with pytest.raises(sqlite.driver().OperationalError, match="unable to open database file"):
        await transactions.probe(5.0)


async def test_sqlite_reads_off_the_loop_use_four_threads(tmp_path: Path) -> None:
    """Reads off the event loop share four threads: eight units that wait in fours all finish."""
    transactions = Transactions(Database(f"sqlite:///{tmp_path / 'r.db'}"), inline_reads=False)
    together = threading.Barrier(4, timeout=5)

    def unit(_: Connection) -> str:
        together.wait()
        return threading.current_thread().name

    try:
        names = await asyncio.gather(*(transactions.read(unit) for _ in range(8)))
        assert sorted(set(names)) == [f"lastro-db-read_{n}" for n in range(4)]
    finally:
        transactions.close()
        transactions.database.dispose()


async def test_keyword_arguments_alone_reach_the_unit(backend: Backend, transactions: Transactions) -> None:
    """read(work, key=value) calls work(connection, key=value), with no positional argument."""
    await transactions.write(_insert(backend, "ada"))
    assert await transactions.read(_count, table=backend.table) == 1


async def test_every_give_up_is_counted(backend: Backend, transactions: Transactions) -> None:
    """Three units that each gave up count three, and each 503 names the database's error."""
    words = {"sqlite": "database is locked", "postgres": "could not serialize access"}[backend.name]

    def unit(connection: Connection) -> None:
        raise backend.transient_failure(connection)

    for _ in range(3):
        with pytest.raises(ServiceUnavailable) as raised:
            await transactions.write(unit)
        assert raised.value.detail.startswith("the database did not complete the request: ")
        assert words in raised.value.detail
    assert transactions.gave_up == 3


async def test_an_open_breaker_names_the_error_that_opened_it(
    vanishing: tuple[Transactions, Path], tmp_path: Path
) -> None:
    """The breaker opened by a vanished file reports that error, by type and first line."""
    transactions, path = vanishing
    shutil.move(path, tmp_path / "elsewhere.db")
    with pytest.raises(ServiceUnavailable):
        await transactions.write(_select_one)
    last_error = transactions.breaker.snapshot()["last_error"]
    assert (
        last_error
        == f"OperationalError: ({sqlite.driver().__name__}.OperationalError) unable to open database file"
    )


async def test_the_unit_span_hook_wraps_every_attempt_once(backend: Backend, fake_time: FakeTime) -> None:
    """With `unit_spans`, a unit runs inside one hook call (all attempts and retries inside it), given the
    backend, the mode and the function before its arguments were bound."""
    events: list[object] = []

    @contextmanager
    def unit_spans(system: str, mode: str, work: Callable[..., object]) -> Iterator[None]:
        events.append(("enter", system, mode, work))
        yield
        events.append("exit")

    def unit(connection: Connection, name: str) -> None:
        events.append("attempt")
        _insert_name(connection, backend.table, name)
        if events.count("attempt") == 1:
            raise backend.transient_failure(connection)

    policy = RetryPolicy(stop=StopAfterAttempt(3), sleep=fake_time.sleep, clock=fake_time.clock)
    transactions = Transactions(backend.database, retry=policy, unit_spans=unit_spans)
    try:
        await transactions.write(unit, "ada")
    finally:
        transactions.close()
    system = "sqlite" if backend.name == "sqlite" else "postgresql"
    assert events == [("enter", system, "write", unit), "attempt", "attempt", "exit"]
