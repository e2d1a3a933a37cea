"""`open_transport(settings, database)`: the broadcast's backend for a running service; `keep_trimmed`.

Redis when `REDIS_URL` is set (every machine shares it); else the service's database: `LISTEN`/`NOTIFY`
on PostgreSQL, the SQLite file's `lastro_events` table on one machine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from lastro.coordination.events import Transport
from lastro.coordination.reconnect import Sleep
from lastro.coordination.sqlite_events import SQLiteTransport
from lastro.db.engine import Database
from lastro.errors import one_line
from lastro.observability.logging import get_logger
from lastro.settings import Settings

__all__ = ["keep_trimmed", "open_transport"]

logger = get_logger("lastro.events")


def open_transport(settings: Settings, database: Database) -> Transport:
    if settings.REDIS_URL:
        from lastro.coordination.redis_events import RedisTransport  # only with the redis extra

        return RedisTransport(
            settings.REDIS_URL,
            timeout=settings.REDIS_SOCKET_TIMEOUT,
            prefix=f"lastro:{settings.SERVICE_NAME}:events",
        )
    if database.is_sqlite:
        return SQLiteTransport(database, poll_interval=settings.EVENTS_POLL_INTERVAL)
    from lastro.coordination.postgres_events import PostgresTransport

    return PostgresTransport(database, timeout=settings.DB_CONNECT_TIMEOUT, gap=settings.EVENTS_POLL_INTERVAL)


async def keep_trimmed(
    transport: Transport,
    retention: float,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """Drop the events older than `retention` now and then, until cancelled. Every worker runs it: a trim
    is idempotent, and one that fails (the backend away) is made up for by the next."""
    interval = min(max(retention / 10, 1.0), 60.0)
    while True:
        await sleep(interval)
        try:
            gone = await transport.trim(clock() - retention)
        except Exception as error:
            logger.warning("events not trimmed", error=one_line(error))
        else:
            if gone:
                logger.debug("events trimmed", count=gone)
