"""Start-up and shutdown of a service, wrapped around the application's own lifespan.

Start-up: open the database and fail fast with a clear message if it does not answer or its schema is
behind the migrations in `MIGRATIONS_DIR`; start tracing (with `TRACING` on); register the health checks;
record the start time. While the worker serves, a watchdog ends it if its event loop stops turning for
`TIMEOUT` seconds. Shutdown, each step logged: cancel background tasks (newest first), run the
application's own shutdown, close the pool, export the spans still queued.

Periodic jobs: start-up opens `state.jobs` for the application's lifespan to add them to (and adds
`lastro-backup` itself with BACKUP_EVERY or BACKUP_CRON); they are stopped first at shutdown, before the
application's own shutdown closes what they use. On SQLite, each worker holds the database's serving mark
(`lastro.db.serving`) from the start of start-up to the end of shutdown, so `lastro restore` refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI

from lastro import checks
from lastro.coordination import tables
from lastro.coordination.events import Broadcast
from lastro.coordination.jobs import Jobs
from lastro.coordination.transports import keep_trimmed, open_transport
from lastro.db import migrations, serving, sqlite
from lastro.db.breaker import BreakerState, CircuitBreaker
from lastro.db.checkpoint import WalCheckpointer
from lastro.db.engine import Database, DatabaseOptions
from lastro.db.retry import RetryPolicy, StopAfterAttempt, StopAfterDelay
from lastro.db.transactions import Transactions
from lastro.disk import DiskWatch
from lastro.errors import ConfigurationError, StartupError, one_line
from lastro.health import CheckResult
from lastro.monitor import Monitor
from lastro.observability.logging import get_logger
from lastro.observability.metrics import Metrics
from lastro.observability.slowest import SlowestRequests
from lastro.observability.watchdog import LoopWatchdog
from lastro.rate_limits import RateLimits, limit_routes, open_limiter
from lastro.settings import Settings, is_sqlite_url
from lastro.state import ServiceState
from lastro.workers import (
    freeze_long_lived_objects,
    is_supervised_worker,
    resolve_workers,
    schema_checked_for,
)

__all__ = ["wrap_lifespan"]

logger = get_logger("lastro.lifecycle")

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def wrap_lifespan(app: FastAPI, state: ServiceState) -> None:
    """Run lastro's start-up before, and its shutdown after, whatever lifespan `app` already has."""
    inner: Lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        await startup(state)
        try:
            async with inner(app) as inner_state:
                try:
                    if state.rate_limits is not None:  # every route is in place by now
                        limit_routes(app, state.rate_limits)
                    freeze_long_lived_objects()
                    # While serving only: a slow application start-up is no hang.
                    with LoopWatchdog(state.settings.TIMEOUT):
                        yield inner_state
                finally:
                    await _stop_jobs(state)
        finally:
            await shutdown(state)

    app.router.lifespan_context = lifespan


async def startup(state: ServiceState) -> None:
    state.started_at = state.health.started_at = time.time()
    await _mark_serving(state)
    try:
        await _start(state)
    except BaseException:
        _release_serving(state)  # shutdown does not run after a failed start-up
        raise


async def _start(state: ServiceState) -> None:
    settings = state.settings
    database = await _open_database(settings)
    await _check_schema(settings, database)
    await _ensure_tables(database)
    state.database = database
    if state.tracing is not None:
        state.tracing.start()
    state.transactions = transactions = Transactions(
        database,
        retry=RetryPolicy(
            stop=StopAfterAttempt(settings.DB_RETRY_ATTEMPTS) | StopAfterDelay(settings.DB_RETRY_DEADLINE)
        ),
        breaker=CircuitBreaker(
            threshold=settings.DB_BREAKER_THRESHOLD, reset_after=settings.DB_BREAKER_RESET
        ),
        unit_spans=None if state.tracing is None else state.tracing.unit,
    )
    timeout = settings.HEALTH_CHECK_TIMEOUT
    state.health.add("database", _database_check(transactions, timeout), timeout=timeout)
    state.health.add("connection_pool", checks.pool_check(database), timeout=timeout, critical=False)
    state.health.add("background_jobs", checks.tasks_check(state), timeout=timeout)
    state.disk = DiskWatch(
        database.sqlite_path.resolve().parent if database.sqlite_path else None,
        min_free=settings.DISK_MIN_FREE_BYTES,
    )
    state.health.add("disk", state.disk.check, timeout=timeout)
    if database.sqlite_path is not None and settings.SQLITE_WAL_MAX_BYTES:
        checkpointer = WalCheckpointer(
            database.sqlite_path, settings.SQLITE_WAL_MAX_BYTES, lock_backend=settings.SQLITE_WRITE_LOCK
        )
        state.health.add("sqlite_wal", checkpointer.check, timeout=timeout, critical=False)
        state.tasks.start("wal-checkpoint", checkpointer.watch)
    limiter = open_limiter(settings, database)
    state.rate_limits = RateLimits(limiter, settings, state.identify)
    state.health.add("rate_limits", checks.rate_limit_check(limiter), timeout=timeout, critical=False)
    await _start_broadcast(state, database)
    state.tasks.start(
        "database-watchdog", lambda: _watch_database(transactions, settings.DB_WATCH_INTERVAL, timeout)
    )
    state.metrics = metrics = Metrics.open()
    if settings.METRICS_ENABLED and settings.DASHBOARD_ENABLED:
        metrics.slowest = SlowestRequests()
    monitor = Monitor(state, metrics)
    monitor.sample()  # this worker shows in /health detail and /metrics from its first request on
    state.health.add("workers", checks.workers_check(metrics), timeout=timeout, critical=False)
    state.tasks.start("resource-monitor", monitor.run)
    _open_jobs(state)
    logger.info(
        "service started",
        database=database.display_url,
        database_version=database.version,
        environment=settings.ENVIRONMENT,
    )


async def _start_broadcast(state: ServiceState, database: Database) -> None:
    """This worker's `Broadcast`: its receiving loop, the replay log's trim, and its line in `/health`.

    Start-up waits (a little) for the loop to be listening: an event published by the first request
    must reach this worker's own subscribers. A backend that is down does not stop the service.
    """
    settings = state.settings
    transport = open_transport(settings, database)
    state.broadcast = broadcast = Broadcast(
        transport, max_queue=settings.EVENTS_QUEUE_SIZE, replay_max=settings.EVENTS_REPLAY_MAX
    )
    state.tasks.start("broadcast", broadcast.run)
    state.tasks.start("broadcast-trim", lambda: keep_trimmed(transport, settings.EVENTS_RETENTION))
    timeout = settings.HEALTH_CHECK_TIMEOUT
    state.health.add("broadcast", checks.broadcast_check(broadcast), timeout=timeout, critical=False)
    try:
        async with asyncio.timeout(timeout):
            await broadcast.catch_up()
    except Exception as error:  # the loop goes on trying in the background; /health shows it
        logger.warning("event backend not reachable at start-up", error=one_line(error) or "timed out")


async def _mark_serving(state: ServiceState) -> None:
    """SQLite: hold the database's serving mark while this worker runs, so `lastro restore` refuses."""
    path = serving.sqlite_file(state.settings.DATABASE_URL)
    if path is not None:
        if not is_supervised_worker():  # as Database would: the first start creates the directory
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
        state.serving = serving.ServingMark(path)
        await anyio.to_thread.run_sync(state.serving.hold_shared)  # waits for a restore in progress


def _release_serving(state: ServiceState) -> None:
    if state.serving is not None:
        state.serving.release()
        state.serving = None


async def _open_database(settings: Settings) -> Database:
    workers = resolve_workers(settings.WORKERS, settings.DATABASE_URL)
    try:
        if is_sqlite_url(settings.DATABASE_URL):
            sqlite.check_version(workers, allow_unsafe=settings.SQLITE_ALLOW_UNSAFE_VERSION)
        options = DatabaseOptions.from_settings(settings, workers, create=not is_supervised_worker())
        database = Database(settings.DATABASE_URL, options)
    except Exception as exc:
        logger.error("startup failed", reason=str(exc))
        raise StartupError(str(exc)) from None
    try:
        await anyio.to_thread.run_sync(database.ping)
        database.version = await anyio.to_thread.run_sync(database.server_version)
    except ConfigurationError as exc:
        database.dispose()
        logger.error("startup failed", reason=str(exc))
        raise StartupError(str(exc)) from None
    except Exception as exc:
        database.dispose()
        message = f"the database at DATABASE_URL={database.display_url} did not answer: {one_line(exc)}"
        logger.error("startup failed", reason=message)
        raise StartupError(message) from None
    return database


async def _check_schema(settings: Settings, database: Database) -> None:
    """Refuse to start on a database behind the migrations in MIGRATIONS_DIR, unless already checked."""
    directory = settings.MIGRATIONS_DIR
    if not migrations.is_scripts_directory(directory) or schema_checked_for(directory):
        return
    problem = await anyio.to_thread.run_sync(migrations.schema_problem, database, directory)
    if problem is not None:
        database.dispose()
        logger.error("startup failed", reason=problem)
        raise StartupError(problem)


async def _ensure_tables(database: Database) -> None:
    """lastro's own tables (leases, events, jobs), created beside the application's when missing."""
    try:
        await anyio.to_thread.run_sync(tables.ensure_tables, database)
    except Exception as exc:
        database.dispose()
        message = f"could not create lastro's tables in {database.display_url}: {one_line(exc)}"
        logger.error("startup failed", reason=message)
        raise StartupError(message) from None


async def _watch_database(transactions: Transactions, interval: float, within: float) -> None:
    """Probe the database every `interval` seconds and hold the breaker open while it does not answer."""
    while True:
        await _probe(transactions, within)
        await asyncio.sleep(interval)


async def _probe(transactions: Transactions, within: float) -> Exception | None:
    """Ping the database within `within` seconds (HEALTH_CHECK_TIMEOUT), tell the breaker; the error if not.

    The probe has its own connection and thread (`Transactions.probe`): a busy pool neither delays it nor
    passes for an outage, and a probe that cannot answer keeps the service unready until one does.
    """
    breaker = transactions.breaker
    try:
        await transactions.probe(within)
    except Exception as error:
        if breaker.state is BreakerState.CLOSED:
            logger.error("database unreachable", error=one_line(error))
        breaker.probe_failed(error)
        return error
    if breaker.state is not BreakerState.CLOSED:
        logger.info("database reachable again")
    breaker.probe_succeeded()
    return None


def _open_jobs(state: ServiceState) -> None:
    """`state.jobs`, for the application's lifespan to add its periodic jobs to, and their health check.

    Their leases are rows of the service's database, or Redis keys with REDIS_URL.
    """
    settings = state.settings
    observer = None if state.metrics is None else checks.job_metrics(state.metrics)
    leases = None
    if settings.REDIS_URL:
        from lastro.coordination.redis_leases import RedisLeases  # redis is an optional dependency

        leases = RedisLeases(settings.REDIS_URL, timeout=settings.REDIS_SOCKET_TIMEOUT)
    state.jobs = jobs = Jobs(
        state.transactions, retention=settings.JOB_RUNS_RETENTION, leases=leases, observer=observer
    )
    state.health.add(
        "periodic_jobs", checks.jobs_check(jobs), timeout=state.settings.HEALTH_CHECK_TIMEOUT, critical=False
    )
    if settings.BACKUP_EVERY is not None or settings.BACKUP_CRON is not None:
        from lastro.backup.job import schedule_backups

        schedule_backups(settings, jobs.add)


async def _stop_jobs(state: ServiceState) -> None:
    jobs = state._jobs
    if jobs is None:
        return
    if jobs.names:
        logger.info("shutdown: stopping periodic jobs")
    await jobs.stop()


async def shutdown(state: ServiceState) -> None:
    await _stop_jobs(state)  # when the application's start-up failed after adding some
    if state.broadcast is not None:  # first: subscribers (WebSockets) end before the tasks that feed them
        logger.info("shutdown: ending event subscriptions")
        state.broadcast.end_subscriptions()
    logger.info("shutdown: stopping background tasks")
    await state.tasks.stop(grace=state.settings.GRACEFUL_TIMEOUT)
    if state.broadcast is not None:
        await state.broadcast.close()
    if state.rate_limits is not None:
        await state.rate_limits.close()
    if state.is_open:
        logger.info("shutdown: waiting for database writes to finish")
        await anyio.to_thread.run_sync(state.transactions.close)
    if state.database is not None:
        logger.info("shutdown: closing the database pool")
        state.database.dispose()
    if state.tracing is not None:
        logger.info("shutdown: exporting the last spans")
        await anyio.to_thread.run_sync(state.tracing.shutdown)
    _release_serving(state)
    logger.info("shutdown complete", uptime_seconds=round(time.time() - state.started_at, 3))


def _database_check(transactions: Transactions, timeout: float) -> Callable[[], Any]:
    database = transactions.database

    async def check() -> CheckResult:
        error = await _probe(transactions, timeout)
        if error is not None:
            raise error
        return {"backend": database.backend, "version": database.version, **transactions.stats()}

    return check
