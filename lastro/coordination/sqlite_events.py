"""`SQLiteTransport`: the broadcast of a service on one machine, through its own SQLite file.

- **publish** inserts a row into `lastro_events` in a short write transaction, through a `SQLiteWriter`
  of the transport's own: the same file lock and `BEGIN IMMEDIATE` as every lastro write, so it queues
  behind other writers instead of failing with "database is locked". AUTOINCREMENT gives the id, and
  since one writer commits at a time, ids commit in order and are never reused. **publish_on_commit**
  inserts the row in the caller's write unit instead (the transport's database is the service's).
- **run** keeps a thread with a connection of its own that asks `PRAGMA data_version` every
  `EVENTS_POLL_INTERVAL` seconds while the file changes, and less often while it does not, up to every
  `idle_interval` seconds (`lastro.db.polling`). The number moves when another connection, in any
  process, commits to the file: only then does the thread read the rows after the last one it saw, and
  hands them to the event loop in id order. A publication on this worker wakes the thread at once, unless
  the thread looks again within `PROMPT` seconds anyway: under a stream of writes one look then reads the
  events of many, instead of a look, a thread switch and a hand-over for each (benchmarks/RESULTS.md,
  "One look for many publications"). The event loop never waits on SQLite for it.
- **replay** and **trim** are `lastro.coordination.event_log` in a read or write transaction.

Every worker of the machine opens the same file, so this is the broadcast across processes, with no
server beside the database.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

import anyio.to_thread
import orjson
from sqlalchemy import Connection as SQLConnection

from lastro.coordination import event_log
from lastro.coordination.events import Deliver, Event
from lastro.coordination.reconnect import Connection
from lastro.db import sqlite
from lastro.db.engine import Database
from lastro.db.on_commit import on_commit
from lastro.db.polling import IdleBackoff
from lastro.db.writer import SQLiteWriter

__all__ = ["PROMPT", "SQLiteTransport"]

T = TypeVar("T")
# A publication on this worker waits for the thread's next look if it comes within this many seconds.
PROMPT = 0.01
_READ_AFTER = "SELECT id, channel, data, at FROM lastro_events WHERE id > ? ORDER BY id LIMIT ?"


class SQLiteTransport:
    name = "sqlite"

    def __init__(
        self,
        database: Database,
        *,
        poll_interval: float = 0.01,
        idle_interval: float = 0.1,
        clock: Callable[[], float] = time.time,
        batch: int = 500,
    ) -> None:
        self.database = database
        self.poll_interval = poll_interval
        self.idle_interval = idle_interval
        self.clock = clock
        self.batch = batch
        self.link = Connection(self.name, initial=max(poll_interval, 0.05), cap=2.0)
        self._writer = SQLiteWriter(database)
        self._delivered = 0  # the last id handed to `deliver`, on the event loop
        self.looks = 0  # at the file, by the thread
        self._progress = asyncio.Event()
        self._wake = threading.Event()
        self._looks_soon = False  # the next look is due within PROMPT: a publication need not wake it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def publish(self, channel: str, data: Mapping[str, Any]) -> Event:
        at = self.clock()
        event = await self._write(partial(event_log.append, channel=channel, data=data, at=at))
        self._published()
        return event

    def publish_on_commit(self, connection: SQLConnection, channel: str, data: Mapping[str, Any]) -> None:
        event_log.append(connection, channel, data, self.clock())
        on_commit(connection, self._published)

    async def replay(self, channel: str, after: int, limit: int) -> list[Event]:
        return await self._read(partial(event_log.replay, channel=channel, after=after, limit=limit))

    async def trim(self, before: float) -> int:
        return await self._write(partial(event_log.trim, before=before))

    async def catch_up(self) -> None:
        target = await self._read(event_log.newest)
        # Connected too: before its thread first reads the file, a worker has not caught up with anything.
        while self._delivered < target or not self.link.connected:
            self._progress.clear()
            self._wake.set()
            await self._progress.wait()

    async def run(self, deliver: Deliver, lost: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._watch, args=(loop, deliver, lost, ended), name="lastro-events", daemon=True
        )
        self._thread.start()
        try:
            await ended
        finally:
            self._stop.set()
            self._wake.set()

    def statistics(self) -> dict[str, Any]:
        return {**self.link.statistics(), "last_id": self._delivered, "looks": self.looks}

    def _published(self) -> None:
        """This worker's subscribers need not wait for a slow look: wake the thread, unless it looks soon."""
        if not self._looks_soon:
            self._wake.set()

    async def close(self) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            await anyio.to_thread.run_sync(thread.join, 5.0)
        await anyio.to_thread.run_sync(self._writer.close)

    async def _write(self, work: Callable[[SQLConnection], T]) -> T:
        try:
            return await self._writer.submit(work)
        except Exception as error:
            raise event_log.failure(error) from error

    async def _read(self, work: Callable[[SQLConnection], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(self._read_unit, work)
        except Exception as error:
            raise event_log.failure(error) from error

    def _read_unit(self, work: Callable[[SQLConnection], T]) -> T:
        with self.database.engine.connect() as connection, connection.begin():
            return work(connection)

    # The watching thread.

    def _watch(
        self,
        loop: asyncio.AbstractEventLoop,
        deliver: Deliver,
        lost: Callable[[], None],
        ended: asyncio.Future[None],
    ) -> None:
        send = partial(self._send, loop)
        last: int | None = None
        while not self._stop.is_set():
            try:
                connection = self._connect()
            except Exception as error:
                self._stop.wait(self.link.failed(error))
                continue
            try:
                last = self._follow(connection, send, deliver, lost, last)
            except Exception as error:
                self._stop.wait(self.link.failed(error))
            finally:
                connection.close()
        send(_finish, ended)

    def _send(self, loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the event loop closed under the thread: nothing left to deliver to
            self._stop.set()

    def _follow(
        self,
        connection: Any,
        send: Callable[..., None],
        deliver: Deliver,
        lost: Callable[[], None],
        last: int | None,
    ) -> int:
        """Read what each commit to the file added, until stopped or the connection fails."""
        oldest, newest = connection.execute("SELECT min(id), max(id) FROM lastro_events").fetchone()
        self.link.opened()
        send(self._progress.set)  # a catch_up waiting for the link to open goes on
        if last is None:  # a worker receives what is published from now on
            last = int(newest or 0)
        elif (oldest is not None and oldest > last + 1) or int(newest or 0) < last:
            # What was published while the file was unreadable is gone (trimmed, or the file replaced).
            last = int(newest or 0)
            send(self._lose, lost, last)
        send(self._hand_over, deliver, [], last)
        version = None
        backoff = IdleBackoff(self.poll_interval, self.idle_interval)
        while not self._stop.is_set():
            asked = self._wake.is_set()
            self._wake.clear()
            current = connection.execute("PRAGMA data_version").fetchone()[0]
            self.looks += 1
            changed = current != version or asked
            if changed:
                version = current
                while True:
                    rows = connection.execute(_READ_AFTER, (last, self.batch)).fetchall()
                    found = [Event(int(r[0]), r[1], orjson.loads(r[2]), float(r[3])) for r in rows]
                    if found:
                        last = found[-1].id
                    if found or asked:
                        send(self._hand_over, deliver, found, last)
                    if len(found) < self.batch:
                        break
            wait = backoff.after(changed)
            self._looks_soon = wait <= PROMPT
            self._wake.wait(wait)
        return last

    def _connect(self) -> Any:
        path = self.database.sqlite_path
        if path is None:  # in memory: only the engine's connections see the tables
            return self.database.engine.raw_connection()
        uri = f"file:{quote(str(path.resolve()))}?mode=rw"
        return sqlite.driver().connect(
            uri, uri=True, timeout=1.0, isolation_level=None, check_same_thread=False
        )

    # On the event loop.

    def _hand_over(self, deliver: Deliver, found: list[Event], last: int) -> None:
        for event in found:
            deliver(event)
        self._delivered = max(self._delivered, last)
        self._progress.set()

    def _lose(self, lost: Callable[[], None], last: int) -> None:
        self._delivered = last
        lost()


def _finish(ended: asyncio.Future[None]) -> None:
    if not ended.done():
        ended.set_result(None)
