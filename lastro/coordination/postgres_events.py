"""`PostgresTransport`: the broadcast through PostgreSQL, `LISTEN`/`NOTIFY` over the `lastro_events` table.

- **publish** inserts the event and calls `pg_notify('lastro_events', id)` in one statement (the INSERT as
  a CTE, one round trip), in one transaction, through the service's pool: the notification leaves at
  `COMMIT`, or not at all.
  **publish_on_commit** does both in the caller's write unit (the transport's database is the service's).
- **run** has a connection of its own (psycopg async, autocommit) that `LISTEN`s. A notification only
  wakes it: it then reads the rows after the last id it delivered, from the table, which is the truth.
  Every `idle` seconds without one it reads anyway, which is also how a dead connection is noticed.
  It reads at most once every `gap` seconds: under a stream of writes, one read then takes the events of
  many notifications, instead of every worker's listener reading once per commit.
- **Ids commit out of order**: a sequence gives ids at `INSERT`, so a later id can commit first. When a
  row shows up above a missing id, it is held back up to `hold` seconds for the missing one to commit,
  so that subscribers get ids in order. An id still missing then is assumed rolled back and skipped, but
  watched for `late` seconds more: if it commits after all, it is delivered then, out of order, rather
  than lost.
- **Outages**: a failed connection is reopened with capped exponential backoff; the rows published
  meanwhile are read from the table, and when some are no longer kept (trimmed), `lost()` is called.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
import orjson
import psycopg
from sqlalchemy import Connection as SQLConnection
from sqlalchemy import Text, cast, func, select

from lastro.coordination import event_log
from lastro.coordination.events import Deliver, Event
from lastro.coordination.reconnect import Connection, Sleep
from lastro.db.engine import Database
from lastro.db.prepared import Prepared
from lastro.db.sockets import shut_down

__all__ = ["PostgresTransport"]

T = TypeVar("T")
CHANNEL = "lastro_events"
_READ = (
    "SELECT id, channel, data, at FROM lastro_events WHERE id > %(last)s OR id = ANY(%(missing)s) "
    "ORDER BY id LIMIT %(limit)s"
)
_BOUNDS = "SELECT min(id), max(id) FROM lastro_events"
_appended = event_log.APPEND.cte("appended")
# One round trip for the row and its notification, which leaves with the COMMIT.
_APPEND_AND_NOTIFY = Prepared(select(_appended.c.id, func.pg_notify(CHANNEL, cast(_appended.c.id, Text))))


class PostgresTransport:
    name = "postgresql"

    def __init__(
        self,
        database: Database,
        *,
        timeout: float = 5.0,
        idle: float = 5.0,
        hold: float = 1.0,
        late: float = 60.0,
        batch: int = 500,
        gap: float = 0.01,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.database = database
        self.timeout = timeout
        self.idle = idle
        self.hold = hold
        self.late = late
        self.batch = batch
        self.gap = gap
        self.clock = clock
        self.looks = 0  # reads of the table by the listener
        self._sleep = sleep
        self.link = Connection(self.name, sleep=sleep)
        self._last: int | None = None  # ids up to this one are delivered, or skipped as missing
        self._held: dict[int, Event] = {}  # read above a missing id, waiting for it
        self._blocked_since: float | None = None
        self._late: dict[int, float] = {}  # skipped ids still watched, with when to stop watching
        self._progress = asyncio.Event()

    async def publish(self, channel: str, data: Mapping[str, Any]) -> Event:
        at = self.clock()
        return await self._unit(partial(_append_and_notify, channel=channel, data=data, at=at))

    def publish_on_commit(self, connection: SQLConnection, channel: str, data: Mapping[str, Any]) -> None:
        _append_and_notify(connection, channel, data, self.clock())

    async def replay(self, channel: str, after: int, limit: int) -> list[Event]:
        return await self._unit(partial(event_log.replay, channel=channel, after=after, limit=limit))

    async def trim(self, before: float) -> int:
        return await self._unit(partial(event_log.trim, before=before))

    async def catch_up(self) -> None:
        target = await self._unit(event_log.newest)
        while self._last is None or self._last < target:
            self._progress.clear()
            await self._progress.wait()

    async def run(self, deliver: Deliver, lost: Callable[[], None]) -> None:
        while True:
            connection: psycopg.AsyncConnection[Any] | None = None
            try:
                connection = await psycopg.AsyncConnection.connect(
                    **self.database.driver_connect_args(), autocommit=True
                )
                with self._bounded(connection):
                    await connection.execute(f"LISTEN {CHANNEL}")
                    await self._resume(connection, lost)
                self.link.opened()
                await self._follow(connection, deliver)
            except Exception as error:
                await self.link.wait_after(error)
            finally:
                if connection is not None:
                    await _close(connection)

    def statistics(self) -> dict[str, Any]:
        return {**self.link.statistics(), "last_id": self._last, "held": len(self._held), "looks": self.looks}

    async def close(self) -> None:
        pass  # the listening connection belongs to `run`; publishing uses the service's pool

    async def _resume(self, connection: psycopg.AsyncConnection[Any], lost: Callable[[], None]) -> None:
        """Where to start reading: now, on a first connection; after the last id, on a reconnection."""
        oldest, newest = await (await connection.execute(_BOUNDS)).fetchone() or (None, None)
        newest = int(newest or 0)
        if self._last is None:
            self._last = newest
        elif (oldest is not None and oldest > self._last + 1) or newest < self._last:
            self._last, self._held, self._late, self._blocked_since = newest, {}, {}, None
            lost()
        self._progress.set()

    async def _follow(self, connection: psycopg.AsyncConnection[Any], deliver: Deliver) -> None:
        while True:
            looked = time.monotonic()
            with self._bounded(connection):
                await self._read(connection, deliver)
            wait = self.hold / 4 if self._held or self._late else self.idle
            async for _ in connection.notifies(timeout=wait, stop_after=1):
                pass
            # The notifications that arrive meanwhile wait in the connection: the next read takes them all.
            rest = looked + self.gap - time.monotonic()
            if rest > 0:
                await self._sleep(rest)

    async def _read(self, connection: psycopg.AsyncConnection[Any], deliver: Deliver) -> None:
        assert self._last is not None
        now = time.monotonic()
        self.looks += 1
        self._late = {event_id: until for event_id, until in self._late.items() if until > now}
        while True:
            params = {"last": self._last, "missing": list(self._late), "limit": self.batch}
            rows = await (await connection.execute(_READ, params)).fetchall()
            for row in rows:
                event = Event(int(row[0]), row[1], orjson.loads(row[2]), float(row[3]))
                if self._late.pop(event.id, None) is not None:
                    deliver(event)  # committed long after a later id: late, rather than never
                elif event.id > self._last:
                    self._held[event.id] = event
            self._release(deliver, now)
            if len(rows) < self.batch:
                break
        self._progress.set()

    def _release(self, deliver: Deliver, now: float) -> None:
        """Deliver the held events in id order, skipping a missing id once it was waited for `hold` s."""
        assert self._last is not None
        while self._held:
            first = min(self._held)
            if first != self._last + 1:
                if self._blocked_since is None:
                    self._blocked_since = now
                if now - self._blocked_since < self.hold:
                    return
                for missing in range(self._last + 1, min(first, self._last + 1001)):
                    self._late[missing] = now + self.late
            self._blocked_since = None
            self._last = first
            deliver(self._held.pop(first))

    @contextmanager
    def _bounded(self, connection: psycopg.AsyncConnection[Any]) -> Iterator[None]:
        """Past `timeout`, shut the socket down: the read fails at once. (Cancelling it instead makes
        psycopg try to cancel the query on the server, which waits as long again on a dead network.)"""
        watchdog = asyncio.get_running_loop().call_later(self.timeout, shut_down, connection.pgconn.socket)
        try:
            yield
        finally:
            watchdog.cancel()

    async def _unit(self, work: Callable[[SQLConnection], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(self._transaction, work)
        except Exception as error:
            raise event_log.failure(error) from error

    def _transaction(self, work: Callable[[SQLConnection], T]) -> T:
        with self.database.engine.begin() as connection:
            return work(connection)


def _append_and_notify(connection: SQLConnection, channel: str, data: Mapping[str, Any], at: float) -> Event:
    return event_log.append(connection, channel, data, at, statement=_APPEND_AND_NOTIFY)


async def _close(connection: psycopg.AsyncConnection[Any]) -> None:
    with suppress(Exception):  # gone already
        await connection.close()
