"""An in-process `Transport` for tests of what sits on `Broadcast`: one list of events, no backend.

Several `Broadcast`s sharing one `MemoryLog` behave like workers sharing one backend; `log.fail()` makes
the next delivery call `lost()`, as a transport does after an outage it could not replay across.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection

from lastro.coordination.events import Deliver, Event
from lastro.db.on_commit import on_commit
from lastro.errors import EventsExpired

__all__ = ["MemoryLog", "MemoryTransport"]


class MemoryLog:
    """The shared backend: every event ever published, and the transports to wake."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.first_kept = 1  # ids below this were trimmed
        self.transports: list[MemoryTransport] = []

    def append(self, channel: str, data: Mapping[str, Any]) -> Event:
        event = Event(len(self.events) + 1, channel, dict(data), time.time())
        self.events.append(event)
        for transport in self.transports:
            transport._wake.set()
        return event

    def fail(self) -> None:
        """The next turn of every transport's loop reports a loss."""
        for transport in self.transports:
            transport._lost = True
            transport._wake.set()


class MemoryTransport:
    name = "memory"

    def __init__(self, log: MemoryLog) -> None:
        self.log = log
        log.transports.append(self)
        self._delivered = len(log.events)  # a new worker receives what is published from now on
        self._wake = asyncio.Event()
        self._lost = False
        self._caught_up = asyncio.Event()

    async def publish(self, channel: str, data: Mapping[str, Any]) -> Event:
        return self.log.append(channel, data)

    def publish_on_commit(self, connection: Connection, channel: str, data: Mapping[str, Any]) -> None:
        """As the Redis transport: published once the unit has committed (no table to write it in)."""
        on_commit(connection, lambda: self.log.append(channel, data))

    async def replay(self, channel: str, after: int, limit: int) -> list[Event]:
        if after > len(self.log.events) or after + 1 < self.log.first_kept:
            raise EventsExpired(f"events after id {after} are no longer kept")
        return [event for event in self.log.events[after:] if event.channel == channel][:limit]

    async def run(self, deliver: Deliver, lost: Callable[[], None]) -> None:
        while True:
            self._wake.clear()
            if self._lost:
                self._lost = False
                self._delivered = len(self.log.events)
                lost()
            while self._delivered < len(self.log.events):
                event = self.log.events[self._delivered]
                self._delivered += 1
                deliver(event)
            self._caught_up.set()
            await self._wake.wait()

    async def catch_up(self) -> None:
        target = len(self.log.events)
        while self._delivered < target:
            self._caught_up.clear()
            self._wake.set()
            await self._caught_up.wait()

    async def trim(self, before: float) -> int:
        kept = [event for event in self.log.events if event.at >= before]
        gone = len(self.log.events) - len(kept)
        self.log.first_kept = max(self.log.first_kept, kept[0].id if kept else len(self.log.events))
        return gone

    def statistics(self) -> dict[str, Any]:
        return {"connected": True}

    async def close(self) -> None:
        self.log.transports.remove(self)
