"""`open_transport(settings, database)`: the broadcast's backend for a running service.

Redis when `REDIS_URL` is set (every machine shares it); else the service's database: `LISTEN`/`NOTIFY`
on PostgreSQL, the SQLite file's `lastro_events` table on one machine.
"""

from __future__ import annotations

from lastro.coordination.events import Transport
from lastro.coordination.sqlite_events import SQLiteTransport
from lastro.db.engine import Database
from lastro.settings import Settings

__all__ = ["open_transport"]


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

    return PostgresTransport(database, timeout=settings.DB_CONNECT_TIMEOUT)
