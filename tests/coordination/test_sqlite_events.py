"""`SQLiteTransport` on a real SQLite file: two workers, order, replay, expiry, trim, another process."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from lastro.coordination.events import Broadcast
from lastro.coordination.sqlite_events import SQLiteTransport
from lastro.coordination.tables import ensure_tables
from lastro.db.engine import Database
from lastro.errors import EventsExpired
from tests.support.clock import FakeTime
from tests.support.process import ROOT

pytestmark = pytest.mark.anyio

Workers = Callable[..., AbstractAsyncContextManager[Broadcast]]


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'events.db'}")
    ensure_tables(database)
    yield database
    database.dispose()


@pytest.fixture
def worker(database: Database) -> Workers:
    """A worker's `Broadcast` on the test's file (a database of its own, like another process), running."""

    @asynccontextmanager
    async def running(
        poll_interval: float = 0.01, clock: Callable[[], float] = time.time
    ) -> AsyncIterator[Broadcast]:
        own = Database(str(database.url))
        broadcast = Broadcast(SQLiteTransport(own, poll_interval=poll_interval, clock=clock))
        task = asyncio.create_task(broadcast.run())
        try:
            await asyncio.wait_for(broadcast.catch_up(), 10)
            yield broadcast
        finally:
            await broadcast.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            own.dispose()

    return running


async def test_an_event_published_by_one_worker_reaches_the_other(worker: Workers) -> None:
    """What one worker publishes, a subscriber on another worker of the file receives, with its id."""
    async with worker() as one, worker() as two, two.subscribe("orders:1") as events:
        published = await one.publish("orders:1", {"type": "order.created", "order_id": 7})
        received = await asyncio.wait_for(events.get(), 10)
    assert received == published
    assert received.json() == b'{"id":%d,"type":"order.created","order_id":7}' % published.id


async def test_events_arrive_in_the_order_they_were_published(worker: Workers) -> None:
    """A burst from one publisher arrives whole and in order on another worker."""
    async with worker() as one, worker() as two, two.subscribe("c") as events:
        published = [await one.publish("c", {"n": n}) for n in range(50)]
        received = [await asyncio.wait_for(events.get(), 10) for _ in published]
    assert [event.id for event in received] == [event.id for event in published]
    assert [event.data["n"] for event in received] == list(range(50))


async def test_a_publisher_receives_its_own_events_too(worker: Workers) -> None:
    """The publishing worker's own subscribers get the event without waiting for another commit."""
    async with worker(poll_interval=1.0) as one, one.subscribe("c") as events:
        published = await one.publish("c", {"n": 1})
        assert await asyncio.wait_for(events.get(), 5) == published


async def test_since_replays_what_was_missed_then_goes_on_live(worker: Workers) -> None:
    """A subscriber back `since` an id gets the events of its channel after it, then the live ones."""
    async with worker() as one, worker() as two:
        first = await one.publish("c", {"n": 0})
        await one.publish("other", {"n": -1})
        missed = [await one.publish("c", {"n": n}) for n in (1, 2)]
        async with two.subscribe("c", since=first.id) as events:
            live = await one.publish("c", {"n": 3})
            received = [await asyncio.wait_for(events.get(), 10) for _ in range(3)]
    assert [event.id for event in received] == [event.id for event in [*missed, live]]


async def test_since_an_id_never_given_is_expired(worker: Workers) -> None:
    """An id above the newest one was never given out: the subscriber must not wait for it."""
    async with worker() as one:
        newest = await one.publish("c", {"n": 0})
        with pytest.raises(EventsExpired):
            async with one.subscribe("c", since=newest.id + 10):
                pass


async def test_trim_drops_old_events_and_since_before_them_is_expired(worker: Workers) -> None:
    """After a trim, `since` an id before the oldest kept event is expired; after it, still replayed."""
    clock = FakeTime()
    async with worker(clock=clock.clock) as one:
        old = [await one.publish("c", {"n": n}) for n in range(3)]
        clock.now += 60
        kept = await one.publish("c", {"n": 3})
        assert await one.transport.trim(clock.now - 30) == 3
        with pytest.raises(EventsExpired):
            await one.replay("c", old[0].id)
        assert await one.replay("c", old[-1].id) == [kept]


async def test_trim_always_keeps_the_newest_event(worker: Workers) -> None:
    """Trimming everything keeps the newest event, so the newest id stays known."""
    async with worker() as one:
        events = [await one.publish("c", {"n": n}) for n in range(3)]
        assert await one.transport.trim(time.time() + 60) == 2
        assert await one.replay("c", events[-1].id) == []


async def test_an_event_published_by_another_process_is_received(worker: Workers, database: Database) -> None:
    """A separate Python process publishing on the same file reaches this worker's subscriber."""
    script = textwrap.dedent(
        f"""
        import asyncio
        from lastro.coordination.sqlite_events import SQLiteTransport
        from lastro.db.engine import Database

        async def main():
            transport = SQLiteTransport(Database({str(database.url)!r}))
            for n in range(5):
                await transport.publish("c", {{"n": n}})
            await transport.close()

        asyncio.run(main())
        """
    )
    async with worker() as one, one.subscribe("c") as events:
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", script, cwd=ROOT)
        assert await asyncio.wait_for(process.wait(), 60) == 0
        received = [await asyncio.wait_for(events.get(), 10) for _ in range(5)]
    assert [event.data["n"] for event in received] == list(range(5))
