"""`SQLiteTransport` on a real SQLite file: what only it does (a slow poll, other processes, no table)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lastro.coordination.events import Broadcast
from lastro.coordination.sqlite_events import PROMPT, SQLiteTransport
from lastro.coordination.tables import ensure_tables
from lastro.db.engine import Database
from lastro.errors import ServiceUnavailable
from tests.coordination.conftest import running, wait_until
from tests.support.process import ROOT

pytestmark = pytest.mark.anyio


async def test_a_publication_wakes_its_own_worker_without_waiting_for_the_poll(
    sqlite_database: Database,
) -> None:
    """With a one-second poll, the publishing worker's subscriber still gets the event at once."""
    async with (
        running(SQLiteTransport(sqlite_database, poll_interval=1.0)) as one,
        one.subscribe("c") as events,
    ):
        published = await one.publish("c", {"n": 1})
        assert await asyncio.wait_for(events.get(), 0.9) == published


async def test_publications_while_the_thread_looks_soon_share_its_looks(sqlite_database: Database) -> None:
    """A stream of publications does not wake the thread for each: it reads them in its looks, one every
    `PROMPT` seconds at most (two, with the first publication after a look that found nothing), and every
    event still reaches the publishing worker's subscriber."""
    count = 40
    transport = SQLiteTransport(sqlite_database)
    async with running(transport) as broadcast, broadcast.subscribe("c") as events:
        looks, started = transport.looks, time.monotonic()
        for n in range(count):
            await broadcast.publish("c", {"n": n})
        received = [await asyncio.wait_for(events.get(), 10) for _ in range(count)]
        elapsed, looked = time.monotonic() - started, transport.looks - looks
    assert [event.data["n"] for event in received] == list(range(count))
    assert looked <= 2 * elapsed / PROMPT + 3, (looked, elapsed)


async def test_an_event_published_by_another_process_is_received(sqlite_database: Database) -> None:
    """A separate Python process publishing on the same file reaches this worker's subscriber, in order."""
    script = textwrap.dedent(
        f"""
        import asyncio
        from lastro.coordination.sqlite_events import SQLiteTransport
        from lastro.db.engine import Database

        async def main():
            transport = SQLiteTransport(Database({str(sqlite_database.url)!r}))
            for n in range(5):
                await transport.publish("c", {{"n": n}})
            await transport.close()

        asyncio.run(main())
        """
    )
    async with running(SQLiteTransport(sqlite_database)) as one, one.subscribe("c") as events:
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", script, cwd=ROOT)
        assert await asyncio.wait_for(process.wait(), 60) == 0
        received = [await asyncio.wait_for(events.get(), 10) for _ in range(5)]
    assert [event.data["n"] for event in received] == list(range(5))


async def test_a_missing_events_table_shows_in_statistics_then_delivery_resumes(tmp_path: Path) -> None:
    """Without the table the loop reports the error and retries; once the table exists, events flow."""
    database = Database(f"sqlite:///{tmp_path / 'bare.db'}")
    broadcast = Broadcast(SQLiteTransport(database))
    task = asyncio.create_task(broadcast.run())
    try:
        await wait_until(lambda: broadcast.statistics()["last_error"] is not None)
        assert broadcast.statistics()["connected"] is False
        ensure_tables(database)
        await wait_until(lambda: broadcast.statistics()["connected"])
        async with broadcast.subscribe("c") as events:
            published = await broadcast.publish("c", {"n": 1})
            assert await asyncio.wait_for(events.get(), 10) == published
    finally:
        await broadcast.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        database.dispose()


async def test_publishing_without_the_events_table_is_service_unavailable(tmp_path: Path) -> None:
    """A publication the database refuses is a ServiceUnavailable (a 503), not a driver error."""
    database = Database(f"sqlite:///{tmp_path / 'bare.db'}")
    transport = SQLiteTransport(database)
    try:
        with pytest.raises(ServiceUnavailable, match="the events table did not answer"):
            await transport.publish("c", {"n": 1})
    finally:
        await transport.close()
        database.dispose()
