"""`RedisTransport`: the broadcast across machines, through Redis pub/sub with a capped stream to replay.

- **publish** is one Lua script, atomic in Redis: `INCR` of a counter gives the id, `XADD` appends the
  event to a stream capped at about `max_events` entries (`MAXLEN ~`) with that id as the entry's id,
  and `PUBLISH` sends it to every worker. Scripts run one at a time, so ids reach the subscribers in
  order. **publish_on_commit** publishes once the caller's write unit has committed (`on_commit`). A
  counter that Redis lost (a restart without persistence) is seeded from Redis's clock in
  microseconds, above any id it gave before: an id from before the restart is then older than the
  stream's oldest entry, and `since` it is `EventsExpired`, never someone else's events.
- **run** subscribes on a connection of its own, then reads from the stream what was published since
  the last event it delivered: pub/sub alone drops what is sent while a subscriber is away. redis-py
  reconnects a pub/sub connection and subscribes again on its own, silently losing what was sent
  meanwhile, and a peer that vanished without closing the socket blocks a read forever (the hang of the
  `broadcaster` library). So retries are off, each failure drops the connection and opens a new one
  with backoff, and a `PING` after `ping_interval` seconds of silence must be answered within `timeout`.
  When the stream no longer holds what was missed, `lost()` is called.
- **trim** drops the entries older than a time, keeping the newest; **replay** reads the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import orjson
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy import Connection as SQLConnection

from lastro.coordination.event_log import check_kept
from lastro.coordination.events import Deliver, Event
from lastro.coordination.reconnect import Connection, Sleep
from lastro.db.on_commit import on_commit
from lastro.errors import ServiceUnavailable, one_line
from lastro.observability.logging import get_logger

__all__ = ["RedisTransport"]

logger = get_logger("lastro.events")

# The counter, seeded from Redis's clock when missing; returns {counter, id of the stream's oldest entry}.
_SEED = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  local now = redis.call('TIME')
  local seed = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if #newest > 0 then seed = math.max(seed, tonumber(string.match(newest[1][1], '^%d+'))) end
  redis.call('SET', KEYS[1], string.format('%.0f', seed))
end
"""
_SYNC = (
    _SEED
    + """
local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
return {redis.call('GET', KEYS[1]), #oldest > 0 and oldest[1][1] or ''}
"""
)
_PUBLISH = (
    _SEED
    + """
local id = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], string.format('%.0f-0', id), 'm', ARGV[2])
redis.call('PUBLISH', KEYS[3], string.format('%.0f ', id) .. ARGV[2])
return id
"""
)
_TRIM = """
local before, cursor, keep, newest = tonumber(ARGV[1]), '-', nil, nil
while not keep do
  local batch = redis.call('XRANGE', KEYS[1], cursor, '+', 'COUNT', 200)
  if #batch == 0 then break end
  for _, entry in ipairs(batch) do
    if tonumber(string.match(entry[2][2], '^(%S+)')) >= before then keep = entry[1]; break end
    newest = entry[1]
  end
  cursor = '(' .. batch[#batch][1]
end
keep = keep or newest
if not keep then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', keep)
"""


class RedisTransport:
    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        prefix: str = "lastro:events",
        max_events: int = 100_000,
        ping_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.max_events = max_events
        self.ping_interval = ping_interval
        self.clock = clock
        self.link = Connection(self.name, sleep=sleep)
        self._keys = [f"{prefix}:id", f"{prefix}:log", prefix]
        # No retries: a command Redis may have run is never sent twice, and a lost subscription is seen.
        options: dict[str, Any] = {"socket_connect_timeout": timeout, "retry": Retry(NoBackoff(), 0)}
        self._client = redis.asyncio.Redis.from_url(url, socket_timeout=timeout, **options)
        self._subscriber = redis.asyncio.Redis.from_url(url, **options)
        self._publish = self._client.register_script(_PUBLISH)
        self._sync = self._client.register_script(_SYNC)
        self._trim = self._client.register_script(_TRIM)
        self._delivered: int | None = None
        self._barriers: dict[str, asyncio.Future[None]] = {}
        self._closed = False

    async def publish(self, channel: str, data: Mapping[str, Any]) -> Event:
        payload, at = dict(data), self.clock()
        raw = orjson.dumps(payload)
        message = f"{at!r} {len(channel.encode())} {channel}".encode() + raw
        event_id = await self._call(self._publish(keys=self._keys, args=[self.max_events, message]))
        return Event(int(event_id), channel, payload, at)

    def publish_on_commit(self, connection: SQLConnection, channel: str, data: Mapping[str, Any]) -> None:
        on_commit(connection, partial(self._publish_committed, channel, dict(data)))

    async def _publish_committed(self, channel: str, data: Mapping[str, Any]) -> None:
        try:
            await self.publish(channel, data)
        except ServiceUnavailable as error:  # the write took effect: failing its caller would invite a retry
            logger.warning("event not published after its write committed", channel=channel, error=str(error))

    async def replay(self, channel: str, after: int, limit: int) -> list[Event]:
        newest, oldest = await self._bounds()
        check_kept(after, oldest, newest)
        return await self._read(after, channel, limit)

    async def trim(self, before: float) -> int:
        return int(await self._call(self._trim(keys=self._keys[1:2], args=[repr(before)])))

    async def catch_up(self) -> None:
        """A marker sent through the channel: once it comes back, what was published before it has too."""
        token = uuid.uuid4().hex
        arrived = self._barriers[token] = asyncio.get_running_loop().create_future()
        try:
            await self._call(self._client.publish(self._keys[2], f"~{token}"))
            await arrived
        finally:
            self._barriers.pop(token, None)

    async def run(self, deliver: Deliver, lost: Callable[[], None]) -> None:
        while not self._closed:
            pubsub = self._subscriber.pubsub()
            try:
                async with asyncio.timeout(self.timeout):
                    await pubsub.subscribe(self._keys[2])
                await self._receive(pubsub, deliver, lost)
            except Exception as error:
                task = asyncio.current_task()
                if self._closed or (task is not None and task.cancelling()):
                    # redis-py can turn a cancellation that meets a closing socket into ConnectionError.
                    raise asyncio.CancelledError from error
                await self.link.wait_after(error)
            finally:
                await _discard(pubsub)

    def statistics(self) -> dict[str, Any]:
        return {**self.link.statistics(), "last_id": self._delivered}

    async def close(self) -> None:
        self._closed = True
        for barrier in self._barriers.values():
            barrier.cancel()
        await self._client.aclose()
        await self._subscriber.aclose()

    async def _receive(self, pubsub: Any, deliver: Deliver, lost: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        answer_by: float | None = None
        while True:
            wait = self.ping_interval if answer_by is None else max(answer_by - loop.time(), 0.0)
            message = await pubsub.get_message(timeout=wait)
            if message is None:
                if answer_by is not None:
                    raise ConnectionError(f"Redis did not answer a PING within {self.timeout:g} s")
                async with asyncio.timeout(self.timeout):
                    await pubsub.ping()
                answer_by = loop.time() + self.timeout
                continue
            answer_by = None
            kind = message["type"]
            if kind == "subscribe":  # the first, or redis-py subscribed again: fill from the stream
                await self._catch_up_from_stream(deliver, lost)
                self.link.opened()
            elif kind == "message":
                await self._on_message(message["data"], deliver, lost)

    async def _on_message(self, data: bytes, deliver: Deliver, lost: Callable[[], None]) -> None:
        if data.startswith(b"~"):
            barrier = self._barriers.get(data[1:].decode())
            if barrier is not None and not barrier.done():
                barrier.set_result(None)
            return
        event = _parse(data)
        last = self._delivered
        if last is None or event.id <= last:
            return  # from before this worker started, or already read from the stream
        if event.id > last + 1:  # a message went missing: the stream has it
            await self._catch_up_from_stream(deliver, lost)
            return
        self._delivered = event.id
        deliver(event)

    async def _catch_up_from_stream(self, deliver: Deliver, lost: Callable[[], None]) -> None:
        newest, oldest = await self._bounds()
        last = self._delivered
        if last is None:  # a worker receives what is published from now on
            self._delivered = newest
        elif last > newest or last < oldest - 1:
            self._delivered = newest
            lost()
        else:
            for event in await self._read(last):
                self._delivered = event.id
                deliver(event)
        for barrier in self._barriers.values():  # a marker lost with the connection is covered now
            if not barrier.done():
                barrier.set_result(None)

    async def _bounds(self) -> tuple[int, int]:
        """(newest id given out, oldest id kept: newest + 1 when the stream is empty)."""
        counter, oldest = await self._call(self._sync(keys=self._keys[:2]))
        newest = int(counter)
        return newest, (int(oldest.split(b"-")[0]) if oldest else newest + 1)

    async def _read(self, after: int, channel: str | None = None, limit: int | None = None) -> list[Event]:
        """The stream's events after id `after` (of `channel` only, at most `limit`), oldest first."""
        found: list[Event] = []
        start = f"({after}-0"
        while limit is None or len(found) < limit:
            entries = await self._call(self._client.xrange(self._keys[1], start, "+", count=500))
            for entry_id, fields in entries:
                event = _parse(entry_id.split(b"-")[0] + b" " + fields[b"m"])
                if channel is None or event.channel == channel:
                    found.append(event)
            if len(entries) < 500:
                break
            start = f"({entries[-1][0].decode()}"
        return found if limit is None else found[:limit]

    async def _call(self, command: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                return await command
        except (redis.RedisError, OSError, TimeoutError) as error:
            raise ServiceUnavailable(f"Redis did not answer: {one_line(error)}") from error


def _parse(data: bytes) -> Event:
    """`<id> <at> <channel length> <channel><data>`, as the script publishes and the stream keeps."""
    event_id, at, length, rest = data.split(b" ", 3)
    size = int(length)
    return Event(int(event_id), rest[:size].decode(), orjson.loads(rest[size:]), float(at))


async def _discard(pubsub: Any) -> None:
    with contextlib.suppress(Exception):  # the connection is gone already
        await pubsub.aclose()
