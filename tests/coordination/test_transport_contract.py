"""The contract every transport keeps, against the real SQLite, PostgreSQL and Redis: two workers, order,
replay `since` an id, expiry, trim."""

from __future__ import annotations

import asyncio
import time

import pytest

from lastro.errors import EventsExpired
from tests.coordination.conftest import Workers
from tests.support.clock import FakeTime

pytestmark = pytest.mark.anyio


async def test_an_event_published_by_one_worker_reaches_the_other(worker: Workers) -> None:
    """What one worker publishes, a subscriber on another worker receives, with its id."""
    async with worker() as one, worker() as two, two.subscribe("orders:1") as events:
        published = await one.publish("orders:1", {"type": "order.created", "order_id": 7})
        received = await asyncio.wait_for(events.get(), 10)
    assert received == published
    assert received.json() == b'{"id":%d,"type":"order.created","order_id":7}' % published.id


async def test_a_subscriber_receives_only_its_channel(worker: Workers) -> None:
    """An event of another channel is not delivered to it."""
    async with worker() as one, worker() as two, two.subscribe("orders:1") as events:
        await one.publish("orders:2", {"n": 1})
        mine = await one.publish("orders:1", {"n": 2})
        assert (await asyncio.wait_for(events.get(), 10)).id == mine.id


async def test_events_arrive_in_the_order_they_were_published(worker: Workers) -> None:
    """A burst from one publisher arrives whole, in order, with growing ids, on another worker."""
    async with worker() as one, worker() as two, two.subscribe("c") as events:
        published = [await one.publish("c", {"n": n}) for n in range(50)]
        received = [await asyncio.wait_for(events.get(), 10) for _ in published]
    assert [event.id for event in received] == [event.id for event in published]
    assert [event.data["n"] for event in received] == list(range(50))
    assert [event.id for event in published] == sorted({event.id for event in published})


async def test_concurrent_publishers_reach_every_worker_in_one_order(worker: Workers) -> None:
    """Two workers publishing at once: both subscribers see every event, in the same (id) order."""
    async with worker() as one, worker() as two, one.subscribe("c") as first, two.subscribe("c") as second:
        await asyncio.gather(*(source.publish("c", {"n": n}) for n in range(20) for source in (one, two)))
        seen = [
            [(await asyncio.wait_for(events.get(), 10)).id for _ in range(40)] for events in (first, second)
        ]
    assert seen[0] == seen[1] == sorted(seen[0])


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
    clock = FakeTime(start=time.time())
    async with worker(clock.clock) as one:
        old = [await one.publish("c", {"n": n}) for n in range(3)]
        clock.now += 60
        kept = await one.publish("c", {"n": 3})
        assert await one.transport.trim(clock.now - 30) == 3
        with pytest.raises(EventsExpired):
            await one.replay("c", old[0].id)
        assert await one.replay("c", old[-1].id) == [kept]


async def test_trim_always_keeps_the_newest_event(worker: Workers) -> None:
    """Trimming everything keeps the newest event, so a subscriber that saw it may still come back."""
    async with worker() as one:
        events = [await one.publish("c", {"n": n}) for n in range(3)]
        assert await one.transport.trim(time.time() + 60) == 2
        assert await one.replay("c", events[-1].id) == []


async def test_a_publisher_receives_its_own_events(worker: Workers) -> None:
    """The publishing worker's own subscribers get its events."""
    async with worker() as one, one.subscribe("c") as events:
        published = await one.publish("c", {"n": 1})
        assert await asyncio.wait_for(events.get(), 10) == published


async def test_statistics_show_the_backend_connected(worker: Workers) -> None:
    """Once running, the statistics say connected, with no error."""
    async with worker() as one:
        statistics = one.statistics()
    assert statistics["connected"] is True
    assert statistics["last_error"] is None
