"""BoundedAttempt and wait_for_attempt: giving up on a unit at its deadline, and what that tells about it.

The clock is injected and deadlines are set in the past, so no test waits; sockets are real socket pairs.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from lastro.db.attempts import BoundedAttempt, TimedOut, wait_for_attempt
from lastro.db.threads import settle_threadsafe
from tests.support.clock import FakeTime


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, peer = socket.socketpair()
    peer.settimeout(1)
    yield ours, peer
    ours.close()
    peer.close()


def test_a_new_attempt_runs_unconnected() -> None:
    """A new attempt has no connection yet and is not abandoned."""
    bounded = BoundedAttempt(1000.0)
    assert (bounded.connected, bounded.abandoned) == (False, False)


def test_remaining_counts_down_to_zero() -> None:
    """remaining() is the time left before the deadline, never below zero."""
    time = FakeTime(start=10.0)
    bounded = BoundedAttempt(12.5, clock=time.clock)
    assert bounded.remaining() == 2.5
    time.now = 13.0
    assert bounded.remaining() == 0.0


def test_abandoned_before_commit_was_never_committed() -> None:
    """Abandoning a running attempt says it was never committed; its thread then may not commit."""
    bounded = BoundedAttempt(1000.0)
    assert bounded.abandon() is True
    assert bounded.abandoned
    assert bounded.begin_commit() is False


def test_abandoned_once_commit_was_sent_may_have_committed() -> None:
    """Abandoning an attempt whose COMMIT was sent cannot say it was not applied."""
    bounded = BoundedAttempt(1000.0)
    assert bounded.begin_commit() is True
    assert bounded.abandon() is False


def test_a_second_abandon_says_nothing_was_committed_no_more() -> None:
    """Only the first abandon tells that the attempt was running; a second finds it abandoned."""
    bounded = BoundedAttempt(1000.0)
    bounded.abandon()
    assert bounded.abandon() is False


def test_abandoning_shuts_down_the_attached_socket(pair: tuple[socket.socket, socket.socket]) -> None:
    """The socket the thread waits on is shut down, so the peer sees the connection end at once."""
    ours, peer = pair
    bounded = BoundedAttempt(1000.0)
    bounded.attach(ours.fileno())
    bounded.abandon()
    assert peer.recv(1) == b""
    assert ours.fileno() != -1  # shut down, not closed: the driver still owns the descriptor


def test_a_socket_attached_after_abandoning_is_shut_down_at_once(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A thread that connects after its attempt was abandoned finds the new socket shut down."""
    ours, peer = pair
    bounded = BoundedAttempt(1000.0)
    bounded.abandon()
    bounded.attach(ours.fileno())
    assert peer.recv(1) == b""


def test_a_detached_socket_is_left_alone(pair: tuple[socket.socket, socket.socket]) -> None:
    """Once detached (back in the pool), abandoning the attempt does not touch the socket."""
    ours, peer = pair
    bounded = BoundedAttempt(1000.0)
    bounded.attach(ours.fileno())
    bounded.detach()
    bounded.abandon()
    ours.sendall(b"x")
    assert peer.recv(1) == b"x"


def test_abandoning_with_a_descriptor_no_longer_open_does_not_raise() -> None:
    """A socket the driver closed already (its descriptor gone) is skipped quietly."""
    bounded = BoundedAttempt(1000.0)
    bounded.attach(2**20)  # above any descriptor this process has open
    assert bounded.abandon() is True


def test_timed_out_says_whether_it_was_committed() -> None:
    """TimedOut carries whether the COMMIT was never sent, and says what happened."""
    error = TimedOut(never_committed=True)
    assert (error.never_committed, str(error)) == (True, "the attempt did not finish before its deadline")


@pytest.mark.anyio
async def test_a_finished_attempt_is_returned_even_at_its_deadline() -> None:
    """An attempt that finished by its deadline gives its result, however late it is awaited."""
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    future.set_result("done")
    assert await wait_for_attempt(future, BoundedAttempt(0.0)) == "done"


@pytest.mark.anyio
async def test_an_unfinished_attempt_is_abandoned_at_its_deadline() -> None:
    """At the deadline the attempt is abandoned and TimedOut says it never committed."""
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    bounded = BoundedAttempt(0.0)
    with pytest.raises(TimedOut) as timed_out:
        await wait_for_attempt(future, bounded)
    assert (timed_out.value.never_committed, bounded.abandoned) == (True, True)


@pytest.mark.anyio
async def test_an_outcome_after_the_deadline_is_dropped() -> None:
    """The thread's outcome that arrives after the deadline leaves the attempt's TimedOut as it was."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    with pytest.raises(TimedOut):
        await wait_for_attempt(future, BoundedAttempt(0.0))
    settle_threadsafe(loop, future, False, ConnectionError("the thread's driver woke up"))
    await asyncio.sleep(0)
    assert isinstance(future.exception(), TimedOut)


@pytest.mark.anyio
async def test_an_attempt_abandoned_while_committing_may_have_committed() -> None:
    """At the deadline an attempt that sent its COMMIT is abandoned with its outcome unknown."""
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    bounded = BoundedAttempt(0.0)
    bounded.begin_commit()
    with pytest.raises(TimedOut) as timed_out:
        await wait_for_attempt(future, bounded)
    assert timed_out.value.never_committed is False


@pytest.mark.anyio
async def test_a_cancelled_waiter_abandons_its_unfinished_attempt() -> None:
    """Cancelling the waiter (a request timeout) abandons the attempt; its late failure is dropped."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    bounded = BoundedAttempt(float("inf"))
    waiter = asyncio.create_task(wait_for_attempt(future, bounded))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert bounded.abandoned
    settle_threadsafe(loop, future, False, ConnectionError("the thread's driver woke up"))
    await asyncio.sleep(0)
    assert future.cancelled()


@pytest.mark.anyio
async def test_a_cancellation_is_kept_when_the_answer_arrives_at_the_same_moment() -> None:
    """Cancelled as its attempt finished, the waiter ends cancelled, and the attempt is not abandoned."""
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    bounded = BoundedAttempt(float("inf"))
    waiter = asyncio.create_task(wait_for_attempt(future, bounded))
    await asyncio.sleep(0)
    future.set_result("committed")
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not bounded.abandoned
