"""RetryPolicy: stop and wait strategies, clock and sleep injected, and the retries of a unit of work.

Nothing here sleeps: `sleep` records the delay and advances a fake clock. The transient errors are real
SQLite errors ("database is locked"), produced by two connections competing for the write lock.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from lastro.db import sqlite
from lastro.db.engine import Database, DatabaseOptions
from lastro.db.failures import classify
from lastro.db.retry import (
    Attempt,
    RetryPolicy,
    StopAfterAttempt,
    StopAfterDelay,
    StopAny,
    WaitExponentialJitter,
)
from lastro.db.transactions import Transactions
from lastro.errors import ServiceUnavailable
from lastro.observability.logging import configure_logging
from tests.support.clock import FakeTime

pytestmark = pytest.mark.anyio


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def errors(tmp_path: Path) -> Iterator[dict[str, Exception]]:
    """A real transient error ("database is locked") and a real permanent one (a syntax error)."""
    path = str(tmp_path / "errors.db")
    dbapi = sqlite.driver()
    holder = dbapi.connect(path, isolation_level=None)
    other = dbapi.connect(path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    found: dict[str, Exception] = {}
    try:
        other.execute("BEGIN IMMEDIATE")
    except dbapi.OperationalError as error:
        found["transient"] = error
    try:
        other.execute("SELEC 1")
    except dbapi.OperationalError as error:
        found["permanent"] = error
    holder.execute("ROLLBACK")
    yield found
    holder.close()
    other.close()


def _retryable(error: BaseException) -> bool:
    return classify(error).retryable


def _failing(error: Exception, calls: list[int], succeed_on: int | None = None) -> Any:
    async def unit() -> str:
        calls.append(len(calls) + 1)
        if succeed_on is not None and len(calls) >= succeed_on:
            return "done"
        raise error

    return unit


def _policy(fake_time: FakeTime, **options: Any) -> RetryPolicy:
    return RetryPolicy(sleep=fake_time.sleep, clock=fake_time.clock, **options)


async def test_success_on_first_call_does_not_sleep(fake_time: FakeTime) -> None:
    """A unit that succeeds at once is called once and never waits."""

    async def unit() -> int:
        return 42

    assert await _policy(fake_time).call(unit, retryable=_retryable) == 42
    assert fake_time.sleeps == []


async def test_transient_error_reruns_the_whole_callable(
    fake_time: FakeTime, errors: dict[str, Exception]
) -> None:
    """After a transient error the callable is called again from its start until it succeeds."""
    calls: list[int] = []
    result = await _policy(fake_time).call(
        _failing(errors["transient"], calls, succeed_on=3), retryable=_retryable
    )
    assert result == "done"
    assert calls == [1, 2, 3]
    assert len(fake_time.sleeps) == 2


async def test_permanent_error_is_raised_at_once(fake_time: FakeTime, errors: dict[str, Exception]) -> None:
    """A permanent error (a syntax error) is raised on the first call, without waiting."""
    calls: list[int] = []
    with pytest.raises(type(errors["permanent"])) as raised:
        await _policy(fake_time).call(_failing(errors["permanent"], calls), retryable=_retryable)
    assert raised.value is errors["permanent"]
    assert calls == [1]
    assert fake_time.sleeps == []


async def test_backoff_doubles_between_attempts(fake_time: FakeTime, errors: dict[str, Exception]) -> None:
    """Without jitter the waits are initial, 2x, 4x, 8x."""
    wait = WaitExponentialJitter(initial=0.01, maximum=10.0, jitter=0.5, rng=lambda: 0.0)
    calls: list[int] = []
    await _policy(fake_time, wait=wait, stop=StopAfterAttempt(10)).call(
        _failing(errors["transient"], calls, succeed_on=5), retryable=_retryable
    )
    assert fake_time.sleeps == pytest.approx([0.01, 0.02, 0.04, 0.08])


async def test_backoff_is_capped_at_maximum(fake_time: FakeTime, errors: dict[str, Exception]) -> None:
    """The wait stops growing at `maximum`."""
    wait = WaitExponentialJitter(initial=0.1, maximum=0.25, jitter=0.5, rng=lambda: 0.0)
    calls: list[int] = []
    await _policy(fake_time, wait=wait, stop=StopAfterAttempt(10)).call(
        _failing(errors["transient"], calls, succeed_on=6), retryable=_retryable
    )
    assert fake_time.sleeps == pytest.approx([0.1, 0.2, 0.25, 0.25, 0.25])


@pytest.mark.parametrize("number", range(1, 12))
def test_jitter_stays_within_its_bounds(number: int, errors: dict[str, Exception]) -> None:
    """Each jittered wait lies in [(1 - jitter) * base, base], and the jitter does vary it."""
    rng = random.Random(number)
    wait = WaitExponentialJitter(initial=0.005, maximum=0.25, jitter=0.5, rng=rng.random)
    base = min(0.25, 0.005 * 2 ** (number - 1))
    attempt = Attempt(number=number, elapsed=0.0, error=errors["transient"])
    delays = [wait(attempt) for _ in range(200)]
    assert all(0.5 * base <= delay <= base for delay in delays)
    assert len(set(delays)) > 1


def test_jitter_extremes_are_base_and_base_times_one_minus_jitter(errors: dict[str, Exception]) -> None:
    """A random factor of 0 keeps the base wait, a factor of 1 removes the full jitter share."""
    attempt = Attempt(number=3, elapsed=0.0, error=errors["transient"])
    assert WaitExponentialJitter(initial=0.01, jitter=0.3, rng=lambda: 0.0)(attempt) == pytest.approx(0.04)
    assert WaitExponentialJitter(initial=0.01, jitter=0.3, rng=lambda: 1.0)(attempt) == pytest.approx(0.028)


async def test_attempt_cap_raises_the_last_error(fake_time: FakeTime, errors: dict[str, Exception]) -> None:
    """StopAfterAttempt(3) calls the unit three times, then raises the transient error itself."""
    calls: list[int] = []
    with pytest.raises(type(errors["transient"]), match="database is locked"):
        await _policy(fake_time, stop=StopAfterAttempt(3)).call(
            _failing(errors["transient"], calls), retryable=_retryable
        )
    assert calls == [1, 2, 3]
    assert len(fake_time.sleeps) == 2


async def test_deadline_stops_before_the_next_attempt_would_start_late(
    fake_time: FakeTime, errors: dict[str, Exception]
) -> None:
    """StopAfterDelay(1.0) never starts an attempt after 1 s since the first one."""
    starts: list[float] = []
    first = fake_time.now

    async def slow_unit() -> None:
        starts.append(fake_time.now - first)
        fake_time.now += 0.3  # each attempt takes 300 ms
        raise errors["transient"]

    wait = WaitExponentialJitter(initial=0.1, maximum=0.1, rng=lambda: 0.0)
    with pytest.raises(type(errors["transient"])):
        await _policy(fake_time, stop=StopAfterDelay(1.0), wait=wait).call(slow_unit, retryable=_retryable)
    assert starts == pytest.approx([0.0, 0.4, 0.8])  # a fourth would start at 1.2 s
    assert all(start < 1.0 for start in starts)


async def test_attempt_cap_or_deadline_whichever_comes_first(
    fake_time: FakeTime, errors: dict[str, Exception]
) -> None:
    """`StopAfterAttempt(n) | StopAfterDelay(s)` stops at the attempt cap when the deadline is far away."""
    stop = StopAfterAttempt(4) | StopAfterDelay(3600.0)
    assert isinstance(stop, StopAny)
    calls: list[int] = []
    with pytest.raises(type(errors["transient"])):
        await _policy(fake_time, stop=stop).call(_failing(errors["transient"], calls), retryable=_retryable)
    assert calls == [1, 2, 3, 4]


async def test_default_policy_makes_five_attempts(fake_time: FakeTime, errors: dict[str, Exception]) -> None:
    """The default stop is five attempts (within a 5 s deadline)."""
    calls: list[int] = []
    with pytest.raises(type(errors["transient"])):
        await _policy(fake_time).call(_failing(errors["transient"], calls), retryable=_retryable)
    assert calls == [1, 2, 3, 4, 5]
    assert sum(fake_time.sleeps) < 5.0


async def test_on_retry_sees_each_attempt_and_its_delay(
    fake_time: FakeTime, errors: dict[str, Exception]
) -> None:
    """`on_retry` is told the number, elapsed time and error of each failed attempt, and the wait."""
    seen: list[tuple[int, float, BaseException, float]] = []
    calls: list[int] = []
    await _policy(fake_time, stop=StopAfterAttempt(5)).call(
        _failing(errors["transient"], calls, succeed_on=3),
        retryable=_retryable,
        on_retry=lambda attempt, delay: seen.append((attempt.number, attempt.elapsed, attempt.error, delay)),
    )
    assert [number for number, *_ in seen] == [1, 2]
    assert [delay for *_, delay in seen] == fake_time.sleeps
    assert seen[1][1] == pytest.approx(fake_time.sleeps[0])  # elapsed since the first attempt
    assert all(error is errors["transient"] for _, _, error, _ in seen)


# --- the retries of a unit of work: logged and counted by Transactions ----------------------------------


@pytest.fixture
def locked_database(tmp_path: Path) -> Iterator[tuple[Database, Any]]:
    """A SQLite database (busy timeout 0) whose write lock is held by another connection."""
    path = tmp_path / "locked.db"
    database = Database(f"sqlite:///{path}", DatabaseOptions(sqlite_pragmas={"busy_timeout": 0}))
    holder = sqlite.driver().connect(str(path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield database, holder
    holder.close()
    database.dispose()


@pytest.fixture
def log_records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    configure_logging("INFO", "json")  # lastro's logs go through stdlib logging, where caplog sees them
    return caplog


def _retry_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "lastro.db" and "database retry" in r.getMessage()]


async def test_each_retry_of_a_unit_is_logged_and_counted(
    fake_time: FakeTime, locked_database: tuple[Database, Any], log_records: pytest.LogCaptureFixture
) -> None:
    """Every retry of a locked write logs "database retry" and counts as contention."""
    database, _ = locked_database
    policy = _policy(fake_time, stop=StopAfterAttempt(4))
    transactions = Transactions(database, retry=policy)
    try:
        with pytest.raises(ServiceUnavailable):
            await transactions.write(lambda connection: connection.execute(text("SELECT 1")).scalar())
    finally:
        transactions.close()
    assert transactions.retries == {"contention": 3}
    assert transactions.stats()["retries"] == {"contention": 3}
    records = _retry_logs(log_records)
    assert len(records) == 3
    assert all(record.levelno == logging.WARNING for record in records)
    assert "database is locked" in records[0].getMessage()


async def test_unit_succeeds_once_the_lock_is_released_between_attempts(
    fake_time: FakeTime, locked_database: tuple[Database, Any], log_records: pytest.LogCaptureFixture
) -> None:
    """A lock released during the backoff lets the next attempt through; one retry is logged."""
    database, holder = locked_database

    async def sleep_then_release(seconds: float) -> None:
        await fake_time.sleep(seconds)
        holder.execute("ROLLBACK")

    policy = RetryPolicy(sleep=sleep_then_release, clock=fake_time.clock)
    transactions = Transactions(database, retry=policy)
    calls: list[int] = []

    def unit(connection: Connection) -> int:
        calls.append(1)
        return int(connection.execute(text("SELECT 7")).scalar_one())

    try:
        assert await transactions.write(unit) == 7
    finally:
        transactions.close()
    assert calls == [1]  # the first attempt failed at BEGIN IMMEDIATE, before the unit ran
    assert len(fake_time.sleeps) == 1
    assert transactions.retries == {"contention": 1}
    assert len(_retry_logs(log_records)) == 1
