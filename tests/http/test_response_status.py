"""The response's status, recorded once per request by the outermost layer that asks for it."""

from __future__ import annotations

import pytest
from starlette.types import Message, Scope

from lastro.http.response_status import recording_status, response_status

pytestmark = pytest.mark.anyio

START: Message = {"type": "http.response.start", "status": 201, "headers": []}


async def server_send(message: Message) -> None:
    pass


def http_scope() -> Scope:
    return {"type": "http", "method": "GET", "path": "/", "headers": []}


async def test_the_status_is_recorded_as_the_response_starts() -> None:
    """The status of the start message is there once it has been sent."""
    scope = http_scope()
    send = recording_status(scope, server_send)
    await send(START)
    assert response_status(scope) == 201


async def test_there_is_no_status_before_the_response_starts() -> None:
    """Until the start message goes out, the status is None."""
    scope = http_scope()
    recording_status(scope, server_send)
    assert response_status(scope) is None


async def test_a_body_message_leaves_the_status_as_it_was() -> None:
    """Only the start message sets the status."""
    scope = http_scope()
    send = recording_status(scope, server_send)
    await send(START)
    await send({"type": "http.response.body", "body": b"x"})
    assert response_status(scope) == 201


async def test_a_layer_inside_a_recording_one_gets_send_itself() -> None:
    """Once a layer outside records the status, `send` is handed back unwrapped."""
    scope = http_scope()
    outer = recording_status(scope, server_send)
    assert recording_status(scope, outer) is outer


async def test_the_inner_layer_reads_what_the_outer_one_recorded() -> None:
    """A layer that got `send` back unwrapped reads the status its messages started with."""
    scope = http_scope()
    inner = recording_status(scope, recording_status(scope, server_send))
    await inner(START)
    assert response_status(scope) == 201


async def test_a_copy_of_the_scope_reads_the_same_status() -> None:
    """A copy of the scope made further in shares the record."""
    scope = http_scope()
    send = recording_status(scope, server_send)
    copy = dict(scope)
    await send(START)
    assert response_status(copy) == 201
