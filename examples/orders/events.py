"""The tenant's order events, live: `WS /api/orders/events?token=…[&since=<last event id>]`.

Each committed change to an order is published on channel `orders:{tenant_id}` (`publish_change`, a step
of `Changes`, so with the write and before the route answers: a client sees events in the order of the
writes), and every socket of that tenant, on whichever worker or machine, receives it as one text frame:

    {"id": 41, "type": "order.updated", "order_id": 7, "version": 3, "at": "2026-12-05T06:30:00.123456+00:00"}

The protocol, from the client's side:

- The handshake is refused (HTTP 403, the ASGI close-before-accept) for a missing, invalid or expired token.
- Once the handshake completes, the socket is subscribed: every later change reaches it.
- `since=<id>`: the events after that id come first, then the live ones, none twice. When they are no
  longer all kept (older than `EVENTS_RETENTION`, more than `EVENTS_REPLAY_MAX`, or lost in a broker
  outage), the socket receives one `{"type": "gap", "detail": "...", "since": <id>}` and is closed with code
  4410: the client reloads what it shows (GET /api/orders) and subscribes again without `since`.
- `since` that is not an integer ≥ 0: closed with 1008 (policy violation) and the reason.
- A client more than `EVENTS_QUEUE_SIZE` events behind, or one that takes more than `SEND_TIMEOUT`
  seconds to take a frame: closed with 1013 (try again later); it reconnects with `since`.
- The event backend not answering the replay: closed with 1013 too.
- The service stopping: closed with 1012 (service restart) by uvicorn under `lastro serve`, or 1001
  (going away) when the service's shutdown ends the subscriptions first; the client reconnects (to
  another worker or machine) with `since`.

What the client sends is read (so that a disconnect ends the subscription at once) and ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, WebSocket
from sqlalchemy import Connection
from starlette.websockets import WebSocketDisconnect

import lastro
from examples.orders.auth import Principal, TokenCodec
from examples.orders.changes import OrderChange, Step
from lastro.errors import EventsExpired, ServiceUnavailable, SlowConsumer, SubscriptionEnded

__all__ = [
    "CLOSE_GAP",
    "CLOSE_GOING_AWAY",
    "CLOSE_POLICY",
    "CLOSE_TRY_LATER",
    "SEND_TIMEOUT",
    "channel",
    "publish_change",
    "router",
]

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TRY_LATER = 1013
CLOSE_GAP = 4410  # 4000-4999 are the application's; 410 as in HTTP's Gone
SEND_TIMEOUT = 10.0  # seconds a frame may wait for a client that does not read before it is dropped

router = APIRouter(prefix="/api")


def channel(tenant_id: int) -> str:
    return f"orders:{tenant_id}"


def publish_change(state: lastro.ServiceState) -> Step:
    """The `Changes` step that publishes each change to the tenant's subscribers, with its write.

    On SQLite and PostgreSQL the event is written in the order's own transaction
    (`Broadcast.publish_on_commit`): it is announced if and only if the change committed, and in the order
    of the commits. With Redis it is published once the change has committed; a broker that refuses it
    then does not turn the answer into an error: the writer gets what it did, the miss is logged, and the
    tenant's clients see the change at their next reload or their next event of that order.
    """

    def publish(connection: Connection, change: OrderChange) -> None:
        broadcast = state.broadcast
        if broadcast is None:  # not started: nobody can be subscribed
            return
        data = {
            "type": change.type,
            "order_id": change.order_id,
            "version": change.version,
            "at": _iso_utc(change.at),
        }
        broadcast.publish_on_commit(connection, channel(change.tenant_id), data)

    return publish


@router.websocket("/orders/events")
async def order_events(websocket: WebSocket) -> None:
    principal = _principal(websocket)
    if principal is None:
        await websocket.close(CLOSE_POLICY, "a valid access token is required in ?token=")
        return
    since, error = _since(websocket.query_params.get("since"))
    if error is not None:
        await websocket.accept()
        await websocket.close(CLOSE_POLICY, error)
        return
    broadcast = websocket.app.state.lastro.broadcast
    if broadcast is None:  # the service is not started (or shutting down)
        await websocket.close(CLOSE_GOING_AWAY, "the service is not running")
        return
    try:
        # Subscribed before the handshake completes: a client that saw it complete misses nothing after.
        async with broadcast.subscribe(channel(principal.tenant_id), since=since) as events:
            await websocket.accept()
            await _stream(websocket, events, since)
    except EventsExpired as expired:
        await _send_gap(websocket, str(expired), since)
    except ServiceUnavailable:  # the replay log did not answer: the client tries again, `since` the same id
        if websocket.client_state.name == "CONNECTING":
            await websocket.accept()
        await _close(websocket, CLOSE_TRY_LATER, "the event backend is unavailable: reconnect with ?since=")


async def _stream(websocket: WebSocket, events: lastro.Subscription, since: int | None) -> None:
    """Send the events until the client leaves or the subscription ends; close with the reason."""
    sender = asyncio.ensure_future(_send_events(websocket, events))
    receiver = asyncio.ensure_future(_until_disconnect(websocket))
    try:
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, receiver):
            task.cancel()
        await asyncio.wait({sender, receiver})
    error = None if sender.cancelled() else sender.exception()
    if not receiver.cancelled():
        receiver.exception()  # read, not raised: a client gone mid-frame is no error of the service's
        return  # the client left
    if isinstance(error, EventsExpired):
        await _send_gap(websocket, str(error), since if events.last_id is None else events.last_id)
    elif isinstance(error, SlowConsumer | TimeoutError):
        await _close(websocket, CLOSE_TRY_LATER, "too far behind: reconnect with ?since=<last event id>")
    elif isinstance(error, SubscriptionEnded):
        await _close(websocket, CLOSE_GOING_AWAY, "the service is shutting down")
    elif error is not None and not isinstance(error, WebSocketDisconnect | OSError):
        raise error


async def _send_events(websocket: WebSocket, events: lastro.Subscription) -> None:
    async for event in events:
        async with asyncio.timeout(SEND_TIMEOUT):
            await websocket.send_text(event.json().decode())


async def _until_disconnect(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _send_gap(websocket: WebSocket, detail: str, since: int | None) -> None:
    """Tell the client that events are missing, so that it reloads instead of waiting for them."""
    with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
        if websocket.client_state.name == "CONNECTING":
            await websocket.accept()
        await websocket.send_json({"type": "gap", "detail": detail, "since": since})
    await _close(websocket, CLOSE_GAP, "events missed: reload, then subscribe again")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):  # the client may be gone already
        await websocket.close(code, reason)


def _principal(websocket: WebSocket) -> Principal | None:
    token = websocket.query_params.get("token")
    codec: TokenCodec | None = getattr(websocket.app.state, "tokens", None)
    if not token or codec is None:
        return None
    try:
        return codec.check(token)
    except HTTPException:
        return None


def _since(value: str | None) -> tuple[int | None, str | None]:
    """`since` as an event id, or the reason it is not one."""
    if value is None:
        return None, None
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        return None, "since must be an event id: an integer ≥ 0"
    return int(value), None


def _iso_utc(at: datetime) -> str:
    """ISO 8601 in UTC; a naive datetime (SQLite's) is UTC already."""
    return (at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)).isoformat()
