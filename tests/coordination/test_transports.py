"""`open_transport` picks the backend from the settings; `keep_trimmed` trims now and then, whatever fails."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest

from lastro.coordination.events import Transport
from lastro.coordination.postgres_events import PostgresTransport
from lastro.coordination.redis_events import RedisTransport
from lastro.coordination.sqlite_events import SQLiteTransport
from lastro.coordination.transports import keep_trimmed, open_transport
from lastro.db.engine import Database
from lastro.settings import get_settings
from tests.support.clock import FakeTime

pytestmark = pytest.mark.anyio


class Trims:
    """A transport that only records its trims, failing the ones it is told to."""

    def __init__(self, failing: int = 0) -> None:
        self.cutoffs: list[float] = []
        self.failing = failing

    async def trim(self, before: float) -> int:
        self.cutoffs.append(before)
        if self.failing:
            self.failing -= 1
            raise ConnectionError("the backend is away")
        return 1


def stopping_after(turns: int, time: FakeTime) -> FakeTime:
    """`time`, whose sleep ends the loop (as a cancellation would) after `turns` turns."""
    advance = time.sleep

    async def sleep(seconds: float) -> None:
        if len(time.sleeps) >= turns:
            raise asyncio.CancelledError
        await advance(seconds)

    time.sleep = sleep  # type: ignore[method-assign]
    return time


async def test_keep_trimmed_trims_past_the_retention_every_tenth_of_it() -> None:
    """With a 100 s retention: a trim every 10 s, each of what is older than 100 s then."""
    time, transport = stopping_after(3, FakeTime(start=1000.0)), Trims()
    with pytest.raises(asyncio.CancelledError):
        await keep_trimmed(cast(Transport, transport), 100.0, clock=time.clock, sleep=time.sleep)
    assert time.sleeps == [10.0, 10.0, 10.0]
    assert transport.cutoffs == [910.0, 920.0, 930.0]


async def test_keep_trimmed_waits_between_1_and_60_seconds() -> None:
    """A tiny retention is trimmed every second, a long one every minute."""
    for retention, interval in ((0.5, 1.0), (86400.0, 60.0)):
        time = stopping_after(1, FakeTime())
        with pytest.raises(asyncio.CancelledError):
            await keep_trimmed(cast(Transport, Trims()), retention, clock=time.clock, sleep=time.sleep)
        assert time.sleeps == [interval]


async def test_a_failed_trim_does_not_stop_the_next_ones() -> None:
    """The backend away for a turn: the loop goes on, and the next turn trims."""
    time, transport = stopping_after(3, FakeTime()), Trims(failing=1)
    with pytest.raises(asyncio.CancelledError):
        await keep_trimmed(cast(Transport, transport), 100.0, clock=time.clock, sleep=time.sleep)
    assert len(transport.cutoffs) == 3


def test_a_sqlite_service_broadcasts_through_its_file(tmp_path: Path) -> None:
    """SQLite, no REDIS_URL: the SQLite transport."""
    database = Database(f"sqlite:///{tmp_path / 'service.db'}")
    assert isinstance(open_transport(get_settings(), database), SQLiteTransport)
    database.dispose()


def test_a_postgres_service_broadcasts_through_listen_notify() -> None:
    """PostgreSQL, no REDIS_URL: the PostgreSQL transport (nothing is connected yet)."""
    database = Database("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    assert isinstance(open_transport(get_settings(), database), PostgresTransport)
    database.dispose()


def test_a_postgres_listener_reads_at_most_every_poll_interval() -> None:
    """EVENTS_POLL_INTERVAL is the least time between two of the listener's reads of the table."""
    database = Database("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    transport = open_transport(get_settings(EVENTS_POLL_INTERVAL=0.25), database)
    assert isinstance(transport, PostgresTransport)
    assert transport.gap == 0.25
    database.dispose()


def test_redis_url_wins_over_the_database(tmp_path: Path) -> None:
    """With REDIS_URL, Redis, whatever the database: the broadcast must reach every machine."""
    database = Database(f"sqlite:///{tmp_path / 'service.db'}")
    settings = get_settings(REDIS_URL="redis://127.0.0.1:6379/0")
    assert isinstance(open_transport(settings, database), RedisTransport)
    database.dispose()
