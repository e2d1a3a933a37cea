"""`Jobs` on a real SQLite file with a fake clock: once per slot, leases, retries, degraded, shutdown."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select

from lastro.coordination.jobs import Jobs
from lastro.coordination.tables import job_runs
from lastro.db.transactions import Transactions
from lastro.observability.logging import configure_logging
from tests.support.clock import FakeTime, VirtualTime

pytestmark = pytest.mark.anyio


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the virtual clock moves when every task waits on it, and SQLite's uncontended writes
    run inline, while PostgreSQL's wait on threads; tests/examples/test_jobs.py runs jobs on PostgreSQL."""
    return f"sqlite:///{tmp_path / 'service.db'}"


@asynccontextmanager
async def worker(transactions: Transactions, time: FakeTime, pid: int) -> AsyncIterator[Jobs]:
    jobs = Jobs(transactions, clock=time.clock, sleep=time.sleep, host="test", pid=pid)
    try:
        yield jobs
    finally:
        await jobs.stop()


def crash(jobs: Jobs, name: str) -> None:
    """The job's loop ends without giving its lease up, as when its worker is killed."""
    loop = jobs._loops[name]
    assert loop.task is not None
    loop.task.cancel()
    loop.leader = False


async def nothing() -> None:
    pass


def runs(connection: Connection) -> list[dict[str, Any]]:
    rows = connection.execute(select(job_runs).order_by(job_runs.c.id)).mappings()
    return [dict(row) for row in rows]


async def test_each_slot_runs_once_across_workers(transactions: Transactions) -> None:
    """Three workers, one job every 10 s, for 100 s: one run per slot, on slots aligned to the epoch."""
    time = VirtualTime(start=1003.0)
    calls: list[float] = []

    async def job() -> None:
        calls.append(time.now)

    async with (
        worker(transactions, time, 1) as a,
        worker(transactions, time, 2) as b,
        worker(transactions, time, 3) as c,
    ):
        for jobs in (a, b, c):
            jobs.add("tick", job, every=10)
        await time.run_until(lambda: time.now >= 1100)
    recorded = await transactions.read(runs)
    slots = [row["slot"] for row in recorded]
    assert slots == sorted(set(slots))
    assert set(range(1010, 1100, 10)) <= set(slots)
    assert len(calls) == len(recorded)


async def test_a_success_is_recorded_with_its_host_pid_and_duration(transactions: Transactions) -> None:
    """The run row says who ran it, how it ended, and how long it took; the status says when next."""
    time = VirtualTime(start=1009.0)

    async def job() -> None:
        time.now += 0.25

    async with worker(transactions, time, 7) as jobs:
        jobs.add("tick", job, every=10)
        await time.run_until(lambda: time.now >= 1012)
        status = (await jobs.statuses())["tick"]
    first = (await transactions.read(runs))[0]
    assert (first["outcome"], first["host"], first["pid"], first["slot"]) == ("ok", "test", 7, 1010.0)
    assert first["duration_ms"] == pytest.approx(250.0)
    assert (status["state"], status["pid"]) == ("ok", 7)
    assert status["next_run"] == "1970-01-01T00:17:00+00:00"


async def test_a_failed_run_is_retried_with_growing_delays_within_its_slot(
    transactions: Transactions,
) -> None:
    """Attempts 1, 2, 3 of one slot, each after a longer backoff, capped at half the period."""
    time = VirtualTime(start=1095.0)
    starts: list[float] = []

    async def job() -> None:
        starts.append(time.now)
        raise RuntimeError("boom")

    async with worker(transactions, time, 1) as jobs:
        jobs.add("flaky", job, every=100)
        await time.run_until(lambda: len(starts) >= 4)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert starts[0] == pytest.approx(1100.0)
    assert gaps[0] < gaps[1] < gaps[2] <= 50.0
    attempts = [(row["slot"], row["attempt"], row["outcome"]) for row in await transactions.read(runs)]
    assert attempts[:3] == [(1100.0, 1, "error"), (1100.0, 2, "error"), (1100.0, 3, "error")]


async def test_five_failures_in_a_row_make_the_job_degraded(
    transactions: Transactions, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fifth failure in a row logs a critical line, and the status says degraded."""
    configure_logging("INFO", "json")
    time = VirtualTime(start=1000.0)
    calls = 0

    async def job() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    async with worker(transactions, time, 1) as jobs:
        jobs.add("broken", job, every=10)
        await time.run_until(lambda: calls >= 5)
        status = (await jobs.statuses())["broken"]
    assert status["state"] == "degraded"
    assert status["failures_in_a_row"] >= 5
    assert "RuntimeError: boom" in status["last_error"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    critical = [line for line in lines if line.get("level") == "critical"]
    assert (critical[0]["event"], critical[0]["failures_in_a_row"]) == ("job degraded", 5)


async def test_a_success_resets_the_failures_in_a_row(transactions: Transactions) -> None:
    """After failures, one good run brings the count back to zero and the job back to ok."""
    time = VirtualTime(start=1000.0)
    outcomes = iter([False] * 6 + [True] * 100)
    done = 0

    async def job() -> None:
        nonlocal done
        if not next(outcomes):
            raise RuntimeError("not yet")
        done += 1

    async with worker(transactions, time, 1) as jobs:
        jobs.add("recovering", job, every=10)
        await time.run_until(lambda: done >= 1)
        status = (await jobs.statuses())["recovering"]
    assert (status["state"], status["failures_in_a_row"]) == ("ok", 0)


async def test_the_lease_passes_within_two_periods_when_the_leader_dies(transactions: Transactions) -> None:
    """A leader whose loop dies without releasing: another worker runs the slots within two periods."""
    time = VirtualTime(start=1000.0)
    ran_by: list[int] = []

    def job_of(pid: int) -> Callable[[], Any]:
        async def job() -> None:
            ran_by.append(pid)

        return job

    async with worker(transactions, time, 1) as one, worker(transactions, time, 2) as two:
        one.add("tick", job_of(1), every=10)
        await time.run_until(lambda: one.leads("tick"))
        two.add("tick", job_of(2), every=10)
        await time.run_until(lambda: len(ran_by) >= 2)
        killed_at = time.now
        crash(one, "tick")
        await time.run_until(lambda: 2 in ran_by)
        assert time.now - killed_at <= 20
    recorded = await transactions.read(runs)
    assert [row["slot"] for row in recorded] == sorted({row["slot"] for row in recorded})


async def test_a_daily_job_passes_to_another_worker_within_about_a_minute(transactions: Transactions) -> None:
    """The lease of a long period lasts at most a minute: a dead leader holds the job up no longer."""
    time = VirtualTime(start=1000.0)
    one = Jobs(transactions, clock=time.clock, sleep=time.sleep, host="test", pid=1)
    two = Jobs(transactions, clock=time.clock, sleep=time.sleep, host="test", pid=2)
    one.add("daily", nothing, every=86400)
    await time.run_until(lambda: one.leads("daily"))
    two.add("daily", nothing, every=86400)
    crash(one, "daily")
    killed_at = time.now
    await time.run_until(lambda: two.leads("daily"))
    assert time.now - killed_at <= 80
    await two.stop()


async def test_the_observer_is_told_of_each_run_and_of_losing_the_lead(transactions: Transactions) -> None:
    """Each recorded run reaches the observer (the metrics) with its outcome and the failures in a row."""
    time = VirtualTime(start=1000.0)
    seen: list[tuple[str, str, int]] = []
    outcomes = iter([False, True])

    async def job() -> None:
        if not next(outcomes, True):
            raise RuntimeError("once")

    jobs = Jobs(transactions, clock=time.clock, sleep=time.sleep, host="test", pid=1, observer=_record(seen))
    jobs.add("tick", job, every=10)
    await time.run_until(lambda: len(seen) >= 2)
    await jobs.leases.release("job:tick", jobs.holder)
    await jobs.leases.acquire("job:tick", "another worker", 1000)
    await time.run_until(lambda: seen[-1][1] == "follower")
    await jobs.stop()
    assert seen[:2] == [("tick", "error", 1), ("tick", "ok", 0)]
    assert seen[-1] == ("tick", "follower", 0)


def _record(seen: list[tuple[str, str, int]]) -> Callable[[str, str, int], None]:
    def observe(job: str, outcome: str, failures: int) -> None:
        seen.append((job, outcome, failures))

    return observe


async def test_a_loop_that_fails_is_started_again(transactions: Transactions) -> None:
    """An error outside the job's own function (here, the observer) does not end the job for good."""
    time = VirtualTime(start=1000.0)
    calls: list[str] = []

    def observe(job: str, outcome: str, failures: int) -> None:
        calls.append(outcome)
        if len(calls) == 1:
            raise RuntimeError("observer broke")

    jobs = Jobs(transactions, clock=time.clock, sleep=time.sleep, host="test", pid=1, observer=observe)
    jobs.add("tick", nothing, every=10)
    await time.run_until(lambda: calls.count("ok") >= 3)
    await jobs.stop()


async def test_shutdown_cancels_a_run_and_records_it_cancelled(transactions: Transactions) -> None:
    """A run in progress at shutdown is cancelled, recorded `cancelled`, and the lease released."""
    time = VirtualTime(start=1009.0)
    started = asyncio.Event()

    async def job() -> None:
        started.set()
        await asyncio.Event().wait()

    async with worker(transactions, time, 1) as jobs:
        jobs.add("slow", job, every=10)
        await time.run_until(started.is_set)
    recorded = await transactions.read(runs)
    assert [row["outcome"] for row in recorded] == ["cancelled"]
    other = Jobs(transactions, clock=time.clock, sleep=time.sleep, host="test", pid=2)
    assert await other.leases.acquire("job:slow", other.holder, 10)


async def test_old_runs_are_pruned_after_the_retention(transactions: Transactions) -> None:
    """Runs older than the retention go when a newer run ends."""
    time = VirtualTime(start=1000.0)
    jobs = Jobs(transactions, clock=time.clock, sleep=time.sleep, host="test", pid=1, retention=35)

    async def job() -> None:
        pass

    jobs.add("tick", job, every=10)
    await time.run_until(lambda: time.now >= 1100)
    await jobs.stop()
    started = [row["started_at"] for row in await transactions.read(runs)]
    assert min(started) >= 1100 - 35 - 10


async def test_a_job_needs_exactly_one_schedule(transactions: Transactions) -> None:
    """every= or cron=, one of them."""
    jobs = Jobs(transactions)

    async def job() -> None:
        pass

    with pytest.raises(ValueError, match="either"):
        jobs.add("x", job)
    with pytest.raises(ValueError, match="either"):
        jobs.add("x", job, every=1, cron="* * * * *")
