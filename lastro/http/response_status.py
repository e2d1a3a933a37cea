"""The status a request's response started with, recorded once per request for every layer that asks.

The access log, the metrics, the timeout and the server-error layers each need to know whether the response
has started, and with which status. Each used to wrap `send` for it: a Python call per message per layer.
The outermost of them now wraps it, recording the status in the scope; the ones inside find it recorded
and read it there. Every message the inner ones see passes through the outer one's `send` before their
own `await send(...)` returns, and the layers between them add headers without touching the status, so
each reads what its own wrapper would have seen.
"""

from __future__ import annotations

from starlette.types import Message, Scope, Send

__all__ = ["recording_status", "response_status"]

STATUS_KEY = "lastro.response_status"


def recording_status(scope: Scope, send: Send) -> Send:
    """`send`, recording the response's status in `scope`; `send` itself when a layer outside records it."""
    if STATUS_KEY in scope:
        return send
    # A one-item list rather than the status itself: a copy of the scope made further in shares it.
    recorded: list[int | None] = [None]
    scope[STATUS_KEY] = recorded

    async def send_recording(message: Message) -> None:
        if message["type"] == "http.response.start":
            recorded[0] = message["status"]
        await send(message)

    return send_recording


def response_status(scope: Scope) -> int | None:
    """The status the response started with, None before it starts; `recording_status` must wrap `send`."""
    status: int | None = scope[STATUS_KEY][0]
    return status
