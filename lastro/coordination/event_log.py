"""The `lastro_events` table as a replay log: the statements the SQLite and PostgreSQL transports share.

Each takes a SQLAlchemy connection inside the caller's transaction. The table is the truth; the newest
event is never trimmed, so `max(id)` is the newest id ever given out, and an id above it is one no
subscriber can have seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Integer, bindparam, delete, func, insert, select

from lastro.coordination.events import Event
from lastro.coordination.tables import events
from lastro.db.failures import Failure, classify
from lastro.db.prepared import Prepared
from lastro.errors import EventsExpired, LastroError, ServiceUnavailable, StorageFull, one_line

__all__ = ["APPEND", "append", "bounds", "check_kept", "failure", "newest", "read_after", "replay", "trim"]

_COLUMNS = (events.c.id, events.c.channel, events.c.data, events.c.at)


APPEND = (
    insert(events)
    .values(channel=bindparam("channel"), data=bindparam("data"), at=bindparam("at"))
    .returning(events.c.id)
)
"""The INSERT of one event, `RETURNING id`; a transport may build on it (as a CTE) to do more in one
round trip."""
_APPEND = Prepared(APPEND)

# Built once: the follower reads and a cache's catch-up run them many times a second.
_LIMIT = bindparam("limit", type_=Integer())
_READ_AFTER = select(*_COLUMNS).where(events.c.id > bindparam("after")).order_by(events.c.id).limit(_LIMIT)
_REPLAY = (
    select(*_COLUMNS)
    .where(events.c.channel == bindparam("channel"), events.c.id > bindparam("after"))
    .order_by(events.c.id)
    .limit(_LIMIT)
)
_BOUNDS = select(func.min(events.c.id), func.max(events.c.id))
_TRIM = delete(events).where(
    events.c.at < bindparam("before"), events.c.id < select(func.max(events.c.id)).scalar_subquery()
)


def append(
    connection: Connection,
    channel: str,
    data: Mapping[str, Any],
    at: float,
    *,
    statement: Prepared = _APPEND,
) -> Event:
    """Insert one event; it has its id once the transaction commits.

    `statement` runs with the parameters `channel`, `data` and `at`, and returns the event's id first:
    `APPEND` itself, or a statement built on it, prepared (`lastro.db.prepared`).
    """
    payload = dict(data)
    values = {"channel": channel, "data": orjson.dumps(payload).decode(), "at": at}
    event_id = statement.scalar_one(connection, **values)
    return Event(int(event_id), channel, payload, at)


def read_after(connection: Connection, after: int, limit: int) -> list[Event]:
    """Every channel's events with an id above `after`, oldest first."""
    rows = connection.execute(_READ_AFTER, {"after": after, "limit": limit}).all()
    return _events(rows)


def bounds(connection: Connection) -> tuple[int, int]:
    """(oldest kept id, newest id given out); (newest + 1, newest) when nothing is kept."""
    oldest, newest = connection.execute(_BOUNDS).one()
    newest = int(newest or 0)
    return (int(oldest) if oldest is not None else newest + 1), newest


def newest(connection: Connection) -> int:
    return bounds(connection)[1]


def check_kept(after: int, oldest: int, newest: int) -> None:
    """Raise `EventsExpired` unless every event after id `after` is still kept."""
    if after > newest:
        raise EventsExpired(f"no event has the id {after}: the newest is {newest}")
    if after < oldest - 1:
        raise EventsExpired(f"the events after id {after} are no longer kept (the oldest is {oldest})")


def replay(connection: Connection, channel: str, after: int, limit: int) -> list[Event]:
    """The events of `channel` after id `after`, oldest first; `EventsExpired` if some are gone."""
    check_kept(after, *bounds(connection))
    rows = connection.execute(_REPLAY, {"channel": channel, "after": after, "limit": limit}).all()
    return _events(rows)


def trim(connection: Connection, before: float) -> int:
    """Delete the events published before Unix time `before`, except the newest one."""
    result = connection.execute(_TRIM, {"before": before})
    return int(result.rowcount or 0)


def failure(error: Exception) -> LastroError:
    """What a caller of the transport sees when the table failed it: a 503, or a 507 for a full disk."""
    if isinstance(error, LastroError):
        return error
    if classify(error) is Failure.STORAGE_FULL:
        return StorageFull(f"the database's disk is full: {one_line(error)}")
    return ServiceUnavailable(f"the events table did not answer: {one_line(error)}")


def _events(rows: Sequence[Any]) -> list[Event]:
    return [Event(int(row[0]), row[1], orjson.loads(row[2]), float(row[3])) for row in rows]
