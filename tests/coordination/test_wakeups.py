"""Wakeups: one send for the asks made while another is on its way; sends gated by events, never sleeps."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from lastro.coordination.wakeups import Wakeups

pytestmark = pytest.mark.anyio


class GatedSend:
    """A send that waits for `release` before it returns, counting the sends begun."""

    def __init__(self) -> None:
        self.begun = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> None:
        self.begun += 1
        self.started.set()
        await self.release.wait()


async def test_an_ask_sends_once() -> None:
    """soon() with nothing on its way sends once."""
    send = GatedSend()
    send.release.set()
    wakeups = Wakeups(send, "test")
    wakeups.soon()
    await wakeups.aclose()
    assert (send.begun, wakeups.sent) == (1, 1)


async def test_asks_while_one_is_on_its_way_share_one_more_send() -> None:
    """Five asks while a send waits: after it, one more send, not five."""
    send = GatedSend()
    wakeups = Wakeups(send, "test")
    wakeups.soon()
    await send.started.wait()
    for _ in range(5):
        wakeups.soon()
    send.release.set()
    await wakeups.aclose()
    assert (send.begun, wakeups.sent) == (2, 2)


async def test_a_failed_send_is_logged_and_the_next_ask_sends_again() -> None:
    """A send that raises logs one warning with the error; the next ask sends."""
    calls: list[str] = []

    async def send() -> None:
        calls.append("send")
        if len(calls) == 1:
            raise ConnectionError("server gone")

    wakeups = Wakeups(send, "test")
    with structlog.testing.capture_logs() as logs:
        wakeups.soon()
        await wakeups.aclose()
    assert [(line["event"], line["error"]) for line in logs] == [("wake-up not sent", "server gone")]
    wakeups.soon()
    await wakeups.aclose()
    assert (len(calls), wakeups.sent) == (2, 1)


async def test_aclose_waits_for_the_send_on_its_way() -> None:
    """aclose() returns only once the send on its way has returned."""
    send = GatedSend()
    wakeups = Wakeups(send, "test")
    wakeups.soon()
    await send.started.wait()
    closing = asyncio.ensure_future(wakeups.aclose())
    await asyncio.sleep(0)
    assert not closing.done()
    send.release.set()
    await closing
    assert wakeups.sent == 1
