"""The orders service application factory: `lastro serve examples.orders.app:create_app --factory`."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Connection

import lastro
from examples.orders import accounts
from examples.orders.audit import AuditLog
from examples.orders.audit_routes import router as audit_router
from examples.orders.auth import Passwords, TokenCodec, caller_id
from examples.orders.changes import Changes
from examples.orders.cleanup import JOB_NAME, cleanup
from examples.orders.diagnostics import router as diagnostics_router
from examples.orders.errors import Conflict, add_error_handlers
from examples.orders.events import publish_change
from examples.orders.events import router as events_router
from examples.orders.image_routes import router as images_router
from examples.orders.job_routes import router as jobs_router
from examples.orders.order_cache import open_order_cache
from examples.orders.routes import router
from examples.orders.settings import DEVELOPMENT_ADMIN_PASSWORD, OrdersSettings

logger = lastro.get_logger("orders")


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    settings = settings or lastro.get_settings(OrdersSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # lastro has checked the schema against settings.MIGRATIONS_DIR before this runs.
        state: lastro.ServiceState = app.state.lastro
        app.state.changes = changes = Changes()  # the steps each change to an order goes through, in its unit
        app.state.order_reads = order_reads = open_order_cache(settings, state)
        changes.add_step(order_reads.invalidation())
        state.health.add("order_cache", order_reads.check(), critical=False)
        changes.add_step(publish_change(state))  # to the tenant's WebSockets, in the order's transaction
        app.state.tokens = TokenCodec(_secret(settings), settings.TOKEN_TTL)
        # Niced, so that a login flood leaves the CPU to the event loop (probes, other routes) first.
        hashing = lastro.Bulkhead(
            "password hashing",
            settings.AUTH_HASH_CONCURRENCY,
            settings.AUTH_HASH_WAIT,
            nice=settings.AUTH_HASH_NICE,
        )
        app.state.passwords = passwords = await Passwords.open(hashing)
        state.health.add("password_hashing", _bulkhead_check(hashing), critical=False)
        app.state.images = images = lastro.FileStore(settings.IMAGES_DIR)
        await images.open()
        transactions = state.transactions  # open by now: lastro's start-up runs before this lifespan
        state.jobs.add(
            JOB_NAME, lambda: cleanup(transactions, images, settings), every=settings.CLEANUP_INTERVAL_SECONDS
        )
        audit = AuditLog(transactions, settings)
        audit.start()
        changes.add_step(audit.step)
        state.health.add("order_audit", audit.check, critical=False)
        admin_password = settings.bootstrap_admin_password
        if admin_password is not None:
            await _bootstrap_admin(transactions, passwords, settings.ADMIN_USERNAME, admin_password)
        try:
            yield
        finally:
            await audit.close()  # before lastro's shutdown closes the database: every queued entry is written
            hashing.close()
            await order_reads.close()

    app = lastro.create_app(settings, lifespan=lifespan, identify=caller_id)
    app.include_router(router)
    app.include_router(images_router)
    app.include_router(jobs_router)
    app.include_router(audit_router)
    app.include_router(events_router)
    if not settings.is_production:  # a route that holds a request for up to 30 s is a test's tool
        app.include_router(diagnostics_router)
    add_error_handlers(app)
    return app


def _secret(settings: OrdersSettings) -> str:
    if settings.SECRET_KEY is not None:
        return settings.SECRET_KEY.get_secret_value()
    # Development only (production refuses to start without SECRET_KEY): tokens last as long as the process.
    return secrets.token_urlsafe(48)


def _bulkhead_check(bulkhead: lastro.Bulkhead) -> Callable[[], Awaitable[dict[str, Any]]]:
    """Always ok (a busy bulkhead answers 503 itself, the worker stays ready): shows its load on /health."""

    async def check() -> dict[str, Any]:
        return bulkhead.statistics()

    return check


async def _bootstrap_admin(
    transactions: lastro.Transactions, passwords: Passwords, username: str, password: str
) -> None:
    """With no user at all, create tenant `default` with this administrator (admin/admin in development)."""
    if await transactions.read(accounts.count_users):
        return
    if await transactions.write(_create_admin, username, await passwords.hash(password)):
        if password == DEVELOPMENT_ADMIN_PASSWORD:
            logger.warning(f"development: created tenant 'default' with user {username} / password admin")
        else:
            logger.warning("created the first administrator", tenant="default", username=username)


def _create_admin(connection: Connection, username: str, password_hash: str) -> bool:
    tenant_id = accounts.ensure_tenant(connection, "default")
    try:
        accounts.create_user(connection, tenant_id, username, password_hash, True)
    except Conflict:
        return False  # another worker created it first
    return True
