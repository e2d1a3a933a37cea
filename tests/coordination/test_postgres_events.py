"""`PostgresTransport` on a real PostgreSQL: ids that commit out of order, and outages through a proxy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from lastro.coordination.events import Broadcast
from lastro.coordination.postgres_events import PostgresTransport
from lastro.db.engine import Database
from lastro.errors import EventsExpired
from tests.coordination.conftest import running, wait_until
from tests.support import libpq_trace
from tests.support.pg_proxy import PgProxy

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

INSERT = "INSERT INTO lastro_events (channel, data, at) VALUES ('c', '{\"n\": -1}', %s) RETURNING id"


@pytest.fixture
def databases() -> Iterator[list[Database]]:
    opened: list[Database] = []
    yield opened
    for database in opened:
        database.dispose()


@pytest.fixture
def proxy() -> Iterator[PgProxy]:
    proxy = PgProxy()
    proxy.start()
    yield proxy
    proxy.stop()


def transport(url: str, databases: list[Database], **options: float) -> PostgresTransport:
    databases.append(database := Database(url))
    return PostgresTransport(database, timeout=1.0, idle=0.3, **options)  # type: ignore[arg-type]


def driver_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


async def test_an_id_that_commits_after_a_later_one_is_delivered_first(
    postgres_url: str, databases: list[Database]
) -> None:
    """A transaction holding id N commits after N+1: subscribers still get N, then N+1."""
    async with running(transport(postgres_url, databases, hold=5.0)) as one, one.subscribe("c") as events:
        with psycopg.connect(driver_url(postgres_url)) as slow:
            early = slow.execute(INSERT, (time.time(),)).fetchone()
            later = await one.publish("c", {"n": 1})
            await asyncio.sleep(0.3)  # the listener has seen `later` by now, and holds it
            assert events.pending() == 0
            slow.commit()
        received = [await asyncio.wait_for(events.get(), 10) for _ in range(2)]
    assert early is not None
    assert [event.id for event in received] == [early[0], later.id]


async def test_an_id_rolled_back_holds_later_events_only_for_a_moment(
    postgres_url: str, databases: list[Database]
) -> None:
    """A sequence gap from a rollback delays what follows by `hold`, then delivery goes on."""
    async with running(transport(postgres_url, databases, hold=0.3)) as one, one.subscribe("c") as events:
        with psycopg.connect(driver_url(postgres_url)) as aborted:
            aborted.execute(INSERT, (time.time(),))
            published = await one.publish("c", {"n": 1})
            aborted.rollback()
        assert await asyncio.wait_for(events.get(), 5) == published


async def test_an_id_committed_after_the_hold_is_delivered_late_not_lost(
    postgres_url: str, databases: list[Database]
) -> None:
    """Past `hold`, a missing id is skipped but still watched: when it commits, it is delivered."""
    async with running(transport(postgres_url, databases, hold=0.2)) as one, one.subscribe("c") as events:
        with psycopg.connect(driver_url(postgres_url)) as slow:
            early = slow.execute(INSERT, (time.time(),)).fetchone()
            later = await one.publish("c", {"n": 1})
            assert await asyncio.wait_for(events.get(), 5) == later
            slow.commit()
        assert early is not None
        assert (await asyncio.wait_for(events.get(), 5)).id == early[0]


async def test_events_published_while_a_worker_was_cut_off_are_replayed(
    postgres_url: str, databases: list[Database], proxy: PgProxy
) -> None:
    """Connections dropped under a worker: it reconnects and delivers what was published meanwhile."""
    async with (
        running(transport(postgres_url, databases)) as one,
        running(transport(proxy.url(postgres_url), databases)) as two,
        two.subscribe("c") as events,
    ):
        proxy.stop()
        missed = [await one.publish("c", {"n": n}) for n in range(3)]
        await wait_until(lambda: not two.statistics()["connected"])
        proxy.start()
        assert [await asyncio.wait_for(events.get(), 10) for _ in missed] == missed
        live = await one.publish("c", {"n": 3})
        assert await asyncio.wait_for(events.get(), 10) == live
        assert two.statistics()["reconnections"] >= 1


async def test_a_partition_is_noticed_and_healed_without_a_loss(
    postgres_url: str, databases: list[Database], proxy: PgProxy
) -> None:
    """Nothing forwarded, sockets open: the worker notices within seconds, then catches up once healed."""
    async with (
        running(transport(postgres_url, databases)) as one,
        running(transport(proxy.url(postgres_url), databases)) as two,
        two.subscribe("c") as events,
    ):
        proxy.blackhole()
        missed = [await one.publish("c", {"n": n}) for n in range(3)]
        await wait_until(lambda: not two.statistics()["connected"])
        proxy.restore()
        assert [await asyncio.wait_for(events.get(), 15) for _ in missed] == missed


async def test_events_trimmed_while_a_worker_was_cut_off_end_its_subscriptions(
    postgres_url: str, databases: list[Database], proxy: PgProxy
) -> None:
    """What was missed is no longer kept: subscribers get EventsExpired, and delivery then resumes."""
    async with (
        running(transport(postgres_url, databases)) as one,
        running(transport(proxy.url(postgres_url), databases)) as two,
    ):
        async with two.subscribe("c") as events:
            proxy.stop()
            for n in range(3):
                await one.publish("c", {"n": n})
            assert await one.transport.trim(time.time() + 60) == 2
            await wait_until(lambda: not two.statistics()["connected"])
            proxy.start()
            with pytest.raises(EventsExpired):
                await asyncio.wait_for(events.get(), 10)
        async with two.subscribe("c") as events:
            live = await one.publish("c", {"n": 3})
            assert await asyncio.wait_for(events.get(), 10) == live


async def test_start_up_without_the_database_keeps_trying(databases: list[Database], proxy: PgProxy) -> None:
    """No database at start: the loop reports the error and retries with backoff, never hangs."""
    proxy.stop()
    broadcast = Broadcast(
        transport(proxy.url("postgresql+psycopg://postgres@127.0.0.1:5432/test"), databases)
    )
    task = asyncio.create_task(broadcast.run())
    try:
        await wait_until(lambda: broadcast.statistics()["last_error"] is not None)
        assert broadcast.statistics()["connected"] is False
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_publish_on_commit_sends_the_row_and_its_notification_as_one_statement(
    postgres_url: str, databases: list[Database], tmp_path: Path
) -> None:
    """One statement inserts the event and notifies; the notification leaves at COMMIT, with the row's id."""
    one = transport(postgres_url, databases)
    trace = tmp_path / "libpq.trace"
    with psycopg.connect(driver_url(postgres_url), autocommit=True) as listener:
        listener.execute("LISTEN lastro_events")
        with one.database.engine.connect() as connection, trace.open("w") as file:
            pgconn = connection.connection.driver_connection.pgconn  # type: ignore[union-attr]
            with connection.begin():
                pgconn.trace(file.fileno())
                one.publish_on_commit(connection, "c", {"n": 1})
                pgconn.untrace()
                assert list(listener.notifies(timeout=0.2)) == []  # not before the COMMIT
                event_id = connection.execute(text("SELECT max(id) FROM lastro_events")).scalar_one()
        received = [notify.payload for notify in listener.notifies(timeout=5, stop_after=1)]
    assert received == [str(event_id)]
    sent = libpq_trace.sent(trace)
    assert "Execute" in sent
    assert sent.count("Sync") == 1  # one statement, one round trip (besides the BEGIN)


async def test_a_stream_of_notifications_is_read_in_a_few_looks(
    postgres_url: str, databases: list[Database]
) -> None:
    """Notifications within `gap` of the last read wait for the next: 30 events, few reads, all delivered."""
    async with running(transport(postgres_url, databases, gap=0.3)) as one, one.subscribe("c") as events:
        before = one.statistics()["looks"]
        published = [await one.publish("c", {"n": n}) for n in range(30)]
        received = [await asyncio.wait_for(events.get(), 10) for _ in published]
        looks = one.statistics()["looks"] - before
    assert received == published
    assert looks <= 8
