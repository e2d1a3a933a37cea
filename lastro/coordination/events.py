"""`Broadcast`: publish an event on one worker, receive it on every worker of every machine.

```python
event = await broadcast.publish(f"orders:{tenant_id}", {"type": "order.created", "order_id": 7})

async with broadcast.subscribe(f"orders:{tenant_id}", since=last_id) as events:
    async for event in events:  # what was missed since `last_id`, then what happens, in order
        await websocket.send_bytes(event.json())
```

Each worker keeps one connection to the backend (the `Transport`) and fans what arrives out to its local
subscribers. Every event gets an id that grows with the order of publication; a subscriber that comes back
`since` the last id it saw gets what it missed, from the replay log, as long as the events are younger than
`EVENTS_RETENTION` (else `EventsExpired`). A subscriber more than its queue behind is dropped
(`SlowConsumer`) rather than letting memory grow. When the backend goes away, the transport reconnects with
backoff and replays what it missed meanwhile; what it cannot replay ends the subscriptions with
`EventsExpired`, so that their clients resubscribe instead of waiting for events that will not come.

Order: the events of one publisher arrive in the order it published them. A route that publishes after its
write commits, and answers after the publication, gives its clients events in the order of their writes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection as SQLConnection

from lastro.errors import EventsExpired, SlowConsumer, SubscriptionEnded
from lastro.observability.logging import get_logger

__all__ = ["LOST", "Broadcast", "Event", "Subscription", "Transport"]

logger = get_logger("lastro.events")

Deliver = Callable[["Event"], None]


@dataclass(frozen=True, slots=True)
class Event:
    """One published event: `id` grows with the order of publication, `at` is Unix time."""

    id: int
    channel: str
    data: Mapping[str, Any]
    at: float

    def json(self) -> bytes:
        """`data` with the event's `id` and `at` (ISO 8601 is the publisher's to add, if it wants it)."""
        return orjson.dumps({"id": self.id, **self.data})


class Transport(Protocol):
    """Where events travel between workers: one per worker, one connection to the backend.

    Implementations: `lastro.coordination.sqlite_events`, `postgres_events`, `redis_events`.
    """

    name: str

    async def publish(self, channel: str, data: Mapping[str, Any]) -> Event:
        """Store the event in the replay log and send it to every worker; return it with its id."""
        ...

    def publish_on_commit(self, connection: SQLConnection, channel: str, data: Mapping[str, Any]) -> None:
        """Publish with the write unit that `connection` belongs to: committed with it, or not at all."""
        ...

    async def replay(self, channel: str, after: int, limit: int) -> list[Event]:
        """The events of `channel` with an id above `after`, oldest first, at most `limit`.

        Raises `EventsExpired` when events after `after` are no longer kept, or `after` is an id never
        given out.
        """
        ...

    async def run(self, deliver: Deliver, lost: Callable[[], None]) -> None:
        """Until cancelled: receive every event of every channel and `deliver` each once, in order.

        A lost connection is reopened with backoff, and what was published meanwhile delivered from the
        replay log; when that is not possible, `lost()` is called before delivery resumes.
        """
        ...

    async def catch_up(self) -> None:
        """Return once every event published before this call has been delivered on this worker."""
        ...

    async def trim(self, before: float) -> int:
        """Drop the events published before Unix time `before` from the replay log (always keeping the
        newest); return how many went."""
        ...

    def statistics(self) -> dict[str, Any]:
        """For `/health`: whether it is connected, reconnections, the last error."""
        ...

    async def close(self) -> None: ...


class Subscription:
    """The events of one channel for one subscriber, through a bounded queue.

    Iterate it (`async for event in subscription`) or `await subscription.get()`. It ends with
    `SlowConsumer` when more than `max_queue` events wait, and with `EventsExpired` when the backend lost
    events it could not replay.
    """

    def __init__(self, broadcast: Broadcast, channel: str, max_queue: int) -> None:
        self.channel = channel
        self.max_queue = max_queue
        self._broadcast = broadcast
        self._queue: deque[Event] = deque()
        self._ready = asyncio.Event()
        self._ended: SubscriptionEnded | None = None
        self._replayed: set[int] = set()  # ids already given from the replay log, not to repeat live
        self._after = 0  # ids up to this one were seen before subscribing (`since`): never delivered
        self.last_id: int | None = None

    def _put(self, event: Event) -> None:
        if self._ended is not None or event.id <= self._after:
            return
        if self._replayed and event.id in self._replayed:
            self._replayed.discard(event.id)
            return
        if len(self._queue) >= self.max_queue:
            self._end(SlowConsumer(f"more than {self.max_queue} events waited for this subscriber"))
            return
        self._queue.append(event)
        self._ready.set()

    def _end(self, reason: SubscriptionEnded) -> None:
        if self._ended is None:
            self._ended = reason
            self._queue.clear()
            self._broadcast._remove(self)
        self._ready.set()

    async def get(self) -> Event:
        """The next event; raises `SubscriptionEnded` (`SlowConsumer`, `EventsExpired`) when it ended."""
        while not self._queue:
            if self._ended is not None:
                raise self._ended
            self._ready.clear()
            await self._ready.wait()
        event = self._queue.popleft()
        self.last_id = event.id
        return event

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    def pending(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self._broadcast._remove(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Subscribing:
    """`broadcast.subscribe(...)`: an async context manager that registers, then replays."""

    def __init__(self, broadcast: Broadcast, channel: str, since: int | None, max_queue: int) -> None:
        self._broadcast = broadcast
        self._subscription = Subscription(broadcast, channel, max_queue)
        self._since = since

    async def __aenter__(self) -> Subscription:
        subscription = self._subscription
        subscription._after = self._since or 0
        self._broadcast._add(subscription)  # first: an event published during the replay is not missed
        if self._since is not None:
            try:
                missed = await self._broadcast.replay(subscription.channel, self._since)
            except BaseException:
                subscription.close()
                raise
            live = list(subscription._queue)
            subscription._queue.clear()
            replayed = {event.id for event in missed}
            subscription._queue.extend(missed)
            subscription._queue.extend(event for event in live if event.id not in replayed)
            subscription._replayed = replayed - {event.id for event in live}
            if subscription._queue:
                subscription._ready.set()
        return subscription

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._subscription.close()


class Broadcast:
    """Publish and subscribe across every worker (and machine) of a service; one per worker.

    `run()` is the worker's receiving loop, which the service's lifespan starts as a background task.
    """

    def __init__(self, transport: Transport, *, max_queue: int = 256, replay_max: int = 1000) -> None:
        self.transport = transport
        self.max_queue = max_queue
        self.replay_max = replay_max
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._listeners: dict[str, list[Callable[[Event], None]]] = {}
        self.delivered = 0
        self.dropped_subscribers = 0

    async def publish(self, channel: str, data: Mapping[str, Any]) -> Event:
        """Publish `data` (a JSON object) on `channel`; return the event, with its id."""
        return await self.transport.publish(channel, data)

    def publish_on_commit(self, connection: SQLConnection, channel: str, data: Mapping[str, Any]) -> None:
        """Publish `data` on `channel` with the write unit of `connection` (inside `unit.run`).

        With the replay log in the service's database (SQLite, PostgreSQL), the event is written in the
        unit's own transaction: it commits with the unit's changes, in the order of the commits, or not at
        all, and the write costs no transaction of its own. With Redis, it is published once the unit has
        committed (`lastro.on_commit`); a broker that refuses it then is logged, not raised, since the
        write it announces took effect.
        """
        self.transport.publish_on_commit(connection, channel, data)

    def subscribe(
        self, channel: str, *, since: int | None = None, max_queue: int | None = None
    ) -> _Subscribing:
        """`async with broadcast.subscribe(channel, since=last_id) as events: async for event in events:`.

        With `since`, the events after that id come first (`EventsExpired` on entering when they are no
        longer all kept).
        """
        return _Subscribing(self, channel, since, max_queue or self.max_queue)

    def listen(self, channel: str, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback(event)` on this worker for each event of `channel`; returns the unsubscribe.

        For what must never fall behind, such as a cache's invalidations: the callback runs in the
        receiving loop, so it must be quick and must not raise.
        """
        self._listeners.setdefault(channel, []).append(callback)

        def remove() -> None:
            callbacks = self._listeners.get(channel, [])
            if callback in callbacks:
                callbacks.remove(callback)

        return remove

    async def replay(self, channel: str, since: int) -> list[Event]:
        """The events of `channel` after id `since`; `EventsExpired` when they are not all kept."""
        missed = await self.transport.replay(channel, since, self.replay_max + 1)
        if len(missed) > self.replay_max:
            raise EventsExpired(f"more than {self.replay_max} events were missed since id {since}")
        return missed

    async def catch_up(self) -> None:
        """Return once every event published anywhere before this call has been delivered here."""
        await self.transport.catch_up()

    async def run(self) -> None:
        """The receiving loop: until cancelled, hand each event to this worker's subscribers."""
        await self.transport.run(self.deliver, self.lost)

    def deliver(self, event: Event) -> None:
        """Hand `event` to the local subscribers and listeners of its channel (the transport calls this)."""
        self.delivered += 1
        for callback in self._listeners.get(event.channel, ()):
            try:
                callback(event)
            except Exception:  # one listener's bug must not stop delivery to the others
                logger.exception("event listener failed", channel=event.channel)
        subscriptions = self._subscriptions.get(event.channel)
        if subscriptions:
            for subscription in list(subscriptions):
                subscription._put(event)

    def lost(self) -> None:
        """Events were lost that cannot be replayed: end every subscription, so their clients resubscribe."""
        logger.warning("events lost in a broker outage: subscribers must resubscribe")
        for subscriptions in list(self._subscriptions.values()):
            for subscription in list(subscriptions):
                subscription._end(EventsExpired("events were lost while the broker was unreachable"))
        for callbacks in self._listeners.values():
            for callback in callbacks:
                try:
                    callback(LOST)
                except Exception:
                    logger.exception("event listener failed on a loss")

    def statistics(self) -> dict[str, Any]:
        return {
            "backend": self.transport.name,
            "subscribers": sum(len(subscriptions) for subscriptions in self._subscriptions.values()),
            "delivered": self.delivered,
            "dropped_subscribers": self.dropped_subscribers,
            **self.transport.statistics(),
        }

    def _add(self, subscription: Subscription) -> None:
        self._subscriptions.setdefault(subscription.channel, set()).add(subscription)

    def _remove(self, subscription: Subscription) -> None:
        subscriptions = self._subscriptions.get(subscription.channel)
        if subscriptions is not None and subscription in subscriptions:
            subscriptions.discard(subscription)
            if not subscriptions:
                del self._subscriptions[subscription.channel]
            if isinstance(subscription._ended, SlowConsumer):
                self.dropped_subscribers += 1

    def end_subscriptions(self) -> None:
        """End every subscription (`SubscriptionEnded`), so that their clients close now, not at a timeout."""
        for subscriptions in list(self._subscriptions.values()):
            for subscription in list(subscriptions):
                subscription._end(SubscriptionEnded("the service is shutting down"))

    async def close(self) -> None:
        self.end_subscriptions()
        await self.transport.close()


# What a listener receives when events were lost: id 0 on no channel, "drop everything you derived".
LOST = Event(0, "", {}, 0.0)
