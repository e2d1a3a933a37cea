"""Raw ASGI helpers for middleware tests: an application that echoes, and a lifespan scope sent through."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 200 with the request body, whole."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def post_through(app: ASGIApp, content: bytes, path: str = "/echo") -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.post(path, content=content)


async def lifespan_through(middleware: Callable[[ASGIApp], ASGIApp]) -> list[Message]:
    """The messages a lifespan application sends back, echoing the server's startup, through `middleware`."""
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(await receive())

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(app)({"type": "lifespan"}, receive, send)
    return sent
