"""Start-up and shutdown of a service, wrapped around the application's own lifespan.

Start-up: open the database and fail fast with a clear message if it does not answer; register the
health checks; record the start time. Shutdown, each step logged: cancel background tasks (newest first),
run the application's own shutdown, close the pool.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI

from lastro.db.engine import Database
from lastro.errors import StartupError
from lastro.health import CheckResult
from lastro.observability.logging import get_logger
from lastro.state import ServiceState

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
                yield inner_state
        finally:
            await shutdown(state)

    app.router.lifespan_context = lifespan


async def startup(state: ServiceState) -> None:
    settings = state.settings
    state.started_at = state.health.started_at = time.time()
    database = Database(settings.DATABASE_URL)
    try:
        await anyio.to_thread.run_sync(database.ping)
    except Exception as exc:
        database.dispose()
        message = f"the database at DATABASE_URL={database.display_url} did not answer: {exc}"
        logger.error("startup failed", reason=message)
        raise StartupError(message) from None
    state.database = database
    timeout = settings.HEALTH_CHECK_TIMEOUT
    state.health.add("database", _database_check(database), timeout=timeout)
    state.health.add("connection_pool", _pool_check(database), timeout=timeout, critical=False)
    state.health.add("background_jobs", _tasks_check(state), timeout=timeout)
    logger.info("service started", database=database.display_url, environment=settings.ENVIRONMENT)


async def shutdown(state: ServiceState) -> None:
    logger.info("shutdown: stopping background tasks")
    await state.tasks.stop(grace=state.settings.GRACEFUL_TIMEOUT)
    if state.database is not None:
        logger.info("shutdown: closing the database pool")
        state.database.dispose()
    logger.info("shutdown complete", uptime_seconds=round(time.time() - state.started_at, 3))


def _database_check(database: Database) -> Callable[[], Any]:
    async def check() -> CheckResult:
        await anyio.to_thread.run_sync(database.ping, abandon_on_cancel=True)
        return {"backend": database.url.get_backend_name()}

    return check


def _pool_check(database: Database) -> Callable[[], Any]:
    async def check() -> CheckResult:
        return dict(database.pool_status())

    return check


def _tasks_check(state: ServiceState) -> Callable[[], Any]:
    async def check() -> CheckResult:
        if not state.tasks.healthy:
            raise RuntimeError(f"a background task is failing: {state.tasks.statuses()}")
        return {"tasks": state.tasks.statuses()}

    return check
