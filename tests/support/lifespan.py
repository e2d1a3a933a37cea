"""Drive an application's ASGI lifespan by hand, in-process.

starlette's TestClient warns with plain httpx (and warnings are errors), so the lifespan messages are sent
and awaited here; requests go through `httpx.ASGITransport`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import Message

__all__ = ["running"]


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """Run `app`'s ASGI lifespan around the block: start-up before, shutdown after."""
    to_app: asyncio.Queue[Message] = asyncio.Queue()
    from_app: asyncio.Queue[Message] = asyncio.Queue()
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, to_app.get, from_app.put)
    )
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] == "lifespan.startup.failed":
        await task  # raises the start-up error itself
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        stopped = await from_app.get()
        await task
        assert stopped["type"] == "lifespan.shutdown.complete", stopped
