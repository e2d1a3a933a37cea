"""Periodic jobs that run once per period across every worker and machine: `state.jobs.add(...)`.

Declared in the application's lifespan::

    state.jobs.add("orders-cleanup", cleanup, every=3600)      # or cron="*/5 * * * *"

Each worker runs one loop per job. The loop holds, or tries to take, the job's lease (`lastro_leases`,
`ttl` one period but at most a minute, renewed three times a `ttl`, also while a run lasts), so a leader
that dies leaves it to another worker within two periods. At each slot of the schedule
(`lastro.coordination.schedule`, the same for every worker) the leader inserts the slot's run row; that
insert is the guard (`UNIQUE(job, slot, attempt)`), so even two leaders during a handover never run a slot
twice. A worker that takes the lease over mid-period runs the
slot its dead predecessor had not recorded.

A failed run is recorded and retried with exponential backoff, capped at half a period, as the next
attempt of the same slot while the slot lasts. Failures in a row are counted in the job's status row
(`lastro_jobs`, shared, since the leader can change); a success resets them, and 5 in a row log a
critical line and show the job `degraded` in `/health`. Shutdown cancels a running run (recorded
`cancelled`) and gives the lease up, so another machine takes over at once. A worker killed mid-run leaves
its run `running`. Runs older than JOB_RUNS_RETENTION are deleted by the leader after each run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from lastro.coordination import records
from lastro.coordination.leases import Leases, SqlLeases
from lastro.coordination.schedule import Cron, Every, Schedule
from lastro.db.transactions import Transactions
from lastro.errors import one_line_with_type
from lastro.observability.logging import get_logger

__all__ = ["DEGRADED_AFTER", "JobFunction", "Jobs", "RunObserver"]

logger = get_logger("lastro.jobs")

JobFunction = Callable[[], Awaitable[object]]
# Told of each run this worker recorded: the job, its outcome (ok, error, cancelled), the failures in a row.
# A worker that stops leading is told (job, "follower", 0): the figures are the leader's to show.
RunObserver = Callable[[str, str, int], None]
Sleep = Callable[[float], Awaitable[None]]
DEGRADED_AFTER = 5  # failures in a row that make a job degraded
_LEASE_PREFIX = "job:"
_MAX_TTL = 60.0  # a daily job's leader that dies is replaced within a minute or so, not a day


class Jobs:
    """The periodic jobs of a service, one supervised loop each in every worker."""

    def __init__(
        self,
        transactions: Transactions,
        *,
        retention: float = 7 * 86400.0,
        leases: Leases | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        host: str | None = None,
        pid: int | None = None,
        observer: RunObserver | None = None,
    ) -> None:
        self.transactions = transactions
        self.observer = observer
        self.retention = retention
        self.leases = leases if leases is not None else SqlLeases(transactions, clock=clock)
        self.clock = clock
        self.sleep = sleep
        self.host = host or socket.gethostname()
        self.pid = pid if pid is not None else os.getpid()
        self.holder = f"{self.host}:{self.pid}:{secrets.token_hex(4)}"
        self._loops: dict[str, _Loop] = {}
        self._closed = False

    def add(self, name: str, fn: JobFunction, *, every: float | None = None, cron: str | None = None) -> None:
        """Run `fn` once per period, `every` seconds or at each `cron` minute, on one worker of all."""
        if (every is None) == (cron is None):
            raise ValueError("a job needs either every= (seconds) or cron= (an expression), not both")
        if name in self._loops:
            raise ValueError(f"a job named {name!r} exists already")
        schedule: Schedule = Every(every) if every is not None else Cron(str(cron))
        loop = _Loop(self, name, fn, schedule)
        self._loops[name] = loop
        loop.task = asyncio.create_task(loop.supervise(), name=f"lastro-job:{name}")
        logger.info("job added", job=name, period_s=schedule.period)

    @property
    def names(self) -> list[str]:
        return list(self._loops)

    def leads(self, name: str) -> bool:
        """Whether this worker holds the job's lease (as of its last renewal)."""
        return self._loops[name].leader

    async def statuses(self) -> dict[str, dict[str, Any]]:
        """Each job's shared status: last start, success and error, next run, host and pid, `degraded`."""
        rows = await self.transactions.read(records.statuses, self.names)
        now = self.clock()
        return {
            name: records.status_document(
                rows.get(name), DEGRADED_AFTER, self._loops[name].schedule.next_after(now)
            )
            for name in self.names
        }

    async def recent_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest recorded runs of every job, newest first."""
        return await self.transactions.read(records.recent_runs, limit)

    async def stop(self) -> None:
        """Cancel every loop (a running run is recorded `cancelled`), give the leases up, close them."""
        loops, self._loops = list(self._loops.values()), {}
        for loop in loops:
            if loop.task is not None:
                loop.task.cancel()
        for loop in loops:
            if loop.task is not None:
                await asyncio.gather(loop.task, return_exceptions=True)
            if loop.leader:
                try:
                    await self.leases.release(_LEASE_PREFIX + loop.name, self.holder)
                except Exception as error:
                    logger.warning("job lease not released", job=loop.name, error=one_line_with_type(error))
        if loops:
            logger.info("jobs stopped", jobs=[loop.name for loop in loops])
        if not self._closed:
            self._closed = True
            await self.leases.close()


class _Loop:
    def __init__(self, jobs: Jobs, name: str, fn: JobFunction, schedule: Schedule) -> None:
        self.jobs, self.name, self.fn, self.schedule = jobs, name, fn, schedule
        self.period = schedule.period
        self.ttl = min(self.period, _MAX_TTL)
        self.task: asyncio.Task[None] | None = None
        self.leader = False
        self.due: float | None = None  # the latest slot reached and not yet tried by this worker
        self.attempt = 1
        self.retry_at: float | None = None

    async def supervise(self) -> None:
        """Run the loop; should it ever fail (its own errors are caught where they happen), start it again."""
        while True:
            try:
                await self.run()
            except Exception:
                logger.exception("job loop failed, restarting", job=self.name)
                self.leader = False
                await self.jobs.sleep(min(self.ttl, 5.0))

    async def run(self) -> None:
        jobs = self.jobs
        next_slot = self.schedule.next_after(jobs.clock())
        renew_at = jobs.clock()
        while True:
            now = jobs.clock()
            if now >= next_slot:
                self.due, self.attempt, self.retry_at = next_slot, 1, None
                next_slot = self.schedule.next_after(now)
            if now >= renew_at:
                await self._hold_lease()
                renew_at = now + self.ttl / 3
            if self.leader and self.due is not None and (self.retry_at is None or now >= self.retry_at):
                await self._run_slot(self.due, next_slot)
            wake = min(next_slot, renew_at, self.retry_at or next_slot)
            await jobs.sleep(max(0.0, wake - jobs.clock()))

    async def _hold_lease(self) -> None:
        jobs = self.jobs
        try:
            leader = await jobs.leases.acquire(_LEASE_PREFIX + self.name, jobs.holder, self.ttl)
        except Exception as error:
            # Unsure whether it still holds the lease: it stops leading; the run row guards anyway.
            leader = False
            logger.warning("job lease not renewed", job=self.name, error=one_line_with_type(error))
        if leader != self.leader:
            logger.info("job leader" if leader else "job follower", job=self.name, holder=jobs.holder)
            if not leader and jobs.observer is not None:
                jobs.observer(self.name, "follower", 0)
        self.leader = leader

    async def _run_slot(self, slot: float, next_slot: float) -> None:
        jobs = self.jobs
        started = jobs.clock()
        run = records.Run(self.name, slot, self.attempt, started, jobs.host, jobs.pid)
        try:
            run_id = await jobs.transactions.write(records.claim, run, next_slot)
        except Exception as error:
            logger.warning("job run not claimed", job=self.name, error=one_line_with_type(error))
            self.retry_at = started + self._backoff()
            return
        if run_id is None:  # another worker ran this slot's attempt: nothing left for it here
            self.due, self.retry_at = None, None
            return
        keeper = asyncio.create_task(self._keep_lease())  # a run longer than the lease's ttl keeps it
        try:
            await self.fn()
        except asyncio.CancelledError:
            await self._finish(run_id, "cancelled", None, next_slot)
            raise
        except Exception as error:
            await self._failed(run_id, error, next_slot)
        else:
            await self._finish(run_id, "ok", None, next_slot)
            self.due, self.retry_at = None, None
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def _keep_lease(self) -> None:
        while True:
            await self.jobs.sleep(self.ttl / 3)
            await self._hold_lease()

    async def _failed(self, run_id: int, error: Exception, next_slot: float) -> None:
        jobs = self.jobs
        message = one_line_with_type(error)
        failures = await self._finish(run_id, "error", message, next_slot)
        retry_at = jobs.clock() + self._backoff()
        self.attempt += 1
        self.retry_at = retry_at if retry_at < next_slot else None
        if self.retry_at is None:
            self.due = None  # the next slot is the retry
        if failures is not None and failures >= DEGRADED_AFTER:
            logger.critical("job degraded", job=self.name, failures_in_a_row=failures, error=message)
        else:
            logger.error("job failed", job=self.name, failures_in_a_row=failures, error=message)

    def _backoff(self) -> float:
        base = min(1.0, self.period / 8)
        return min(base * 2.0 ** min(self.attempt - 1, 32), self.period / 2)

    async def _finish(self, run_id: int, outcome: str, error: str | None, next_slot: float) -> int | None:
        """Record the run's end and the job's status; the failures in a row, or None if not recorded."""
        jobs = self.jobs
        ended = jobs.clock()
        end = records.End(run_id, self.name, outcome, error, ended, next_slot, jobs.retention)
        try:
            failures = await jobs.transactions.write(records.finish, end)
        except Exception as record_error:
            logger.warning("job run not recorded", job=self.name, error=one_line_with_type(record_error))
            return None
        if jobs.observer is not None:
            jobs.observer(self.name, outcome, failures)
        return failures
