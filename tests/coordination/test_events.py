"""`Broadcast` over the in-process transport: fan-out, replay `since`, bounded queues, losses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from lastro.coordination.events import LOST, Broadcast, Event
from lastro.errors import EventsExpired, SlowConsumer
from tests.support.events import MemoryLog, MemoryTransport

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def running(log: MemoryLog, **options: int) -> AsyncIterator[Broadcast]:
    broadcast = Broadcast(MemoryTransport(log), **options)
    task = asyncio.create_task(broadcast.run())
    try:
        yield broadcast
    finally:
        task.cancel()
        await broadcast.close()


async def test_an_event_published_on_one_worker_reaches_the_subscribers_of_another() -> None:
    """Two broadcasts on one log are two workers: what one publishes, the other's subscriber gets."""
    log = MemoryLog()
    async with running(log) as one, running(log) as two, two.subscribe("orders:1") as events:
        published = await one.publish("orders:1", {"type": "order.created"})
        received = await asyncio.wait_for(events.get(), 5)
    assert received == published


async def test_a_subscriber_receives_only_its_channel() -> None:
    """Events of another channel are not delivered."""
    log = MemoryLog()
    async with running(log) as broadcast, broadcast.subscribe("orders:1") as events:
        await broadcast.publish("orders:2", {"n": 1})
        mine = await broadcast.publish("orders:1", {"n": 2})
        assert (await asyncio.wait_for(events.get(), 5)).id == mine.id


async def test_since_replays_what_was_missed_then_continues_live() -> None:
    """A subscriber `since` an id gets the events after it, then the live ones, each once."""
    log = MemoryLog()
    async with running(log) as broadcast:
        first = await broadcast.publish("c", {"n": 0})
        missed = [await broadcast.publish("c", {"n": n}) for n in range(1, 4)]
        async with broadcast.subscribe("c", since=first.id) as events:
            live = await broadcast.publish("c", {"n": 4})
            received = [await asyncio.wait_for(events.get(), 5) for _ in range(4)]
    assert [event.id for event in received] == [event.id for event in [*missed, live]]


async def test_since_beyond_the_replay_limit_is_expired() -> None:
    """More missed events than EVENTS_REPLAY_MAX is a gap too old to fill."""
    log = MemoryLog()
    async with running(log, replay_max=2) as broadcast:
        for n in range(4):
            await broadcast.publish("c", {"n": n})
        with pytest.raises(EventsExpired):
            async with broadcast.subscribe("c", since=0):
                pass


async def test_a_slow_subscriber_is_dropped_and_memory_stays_bounded() -> None:
    """Past `max_queue` waiting events the subscription ends with SlowConsumer."""
    log = MemoryLog()
    async with running(log, max_queue=3) as broadcast, broadcast.subscribe("c") as events:
        for n in range(5):
            await broadcast.publish("c", {"n": n})
        await broadcast.catch_up()
        assert events.pending() == 0
        with pytest.raises(SlowConsumer):
            await events.get()
        assert broadcast.statistics()["dropped_subscribers"] == 1


async def test_a_loss_ends_subscriptions_and_tells_listeners() -> None:
    """When the transport lost events, subscribers end with EventsExpired and listeners get LOST."""
    log = MemoryLog()
    heard: list[Event] = []
    async with running(log) as broadcast, broadcast.subscribe("c") as events:
        broadcast.listen("c", heard.append)
        log.fail()
        with pytest.raises(EventsExpired):
            await asyncio.wait_for(events.get(), 5)
    assert heard == [LOST]
