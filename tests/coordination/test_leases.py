"""`SqlLeases` on a real SQLite file: one holder at a time, expiring unless renewed."""

from __future__ import annotations

import pytest

from lastro.coordination.leases import SqlLeases
from lastro.db.transactions import Transactions
from tests.support.clock import FakeTime

pytestmark = pytest.mark.anyio


async def test_a_free_lease_is_taken(transactions: Transactions) -> None:
    """The first holder gets it."""
    assert await SqlLeases(transactions, clock=FakeTime().clock).acquire("job:a", "one", 10)


async def test_a_held_lease_is_refused_to_another_holder(transactions: Transactions) -> None:
    """While it has not expired, nobody else gets it."""
    leases = SqlLeases(transactions, clock=FakeTime().clock)
    await leases.acquire("job:a", "one", 10)
    assert not await leases.acquire("job:a", "two", 10)


async def test_an_expired_lease_passes_to_another_holder(transactions: Transactions) -> None:
    """Past its ttl, the next holder takes it, and the old one's renewal fails."""
    time = FakeTime()
    leases = SqlLeases(transactions, clock=time.clock)
    await leases.acquire("job:a", "one", 10)
    time.now += 10.5
    assert await leases.acquire("job:a", "two", 10)
    assert not await leases.renew("job:a", "one", 10)


async def test_renewal_keeps_the_lease_past_its_first_ttl(transactions: Transactions) -> None:
    """A holder that renews in time keeps it."""
    time = FakeTime()
    leases = SqlLeases(transactions, clock=time.clock)
    await leases.acquire("job:a", "one", 10)
    time.now += 8
    assert await leases.renew("job:a", "one", 10)
    time.now += 8
    assert not await leases.acquire("job:a", "two", 10)


async def test_a_released_lease_is_free_at_once(transactions: Transactions) -> None:
    """Released, another holder takes it without waiting for the expiry."""
    leases = SqlLeases(transactions, clock=FakeTime().clock)
    await leases.acquire("job:a", "one", 10)
    assert await leases.release("job:a", "one")
    assert await leases.acquire("job:a", "two", 10)


async def test_only_the_holder_releases(transactions: Transactions) -> None:
    """Another holder's release changes nothing."""
    leases = SqlLeases(transactions, clock=FakeTime().clock)
    await leases.acquire("job:a", "one", 10)
    assert not await leases.release("job:a", "two")
    assert not await leases.acquire("job:a", "two", 10)


async def test_leases_are_independent_by_name(transactions: Transactions) -> None:
    """Holding one name says nothing of another."""
    leases = SqlLeases(transactions, clock=FakeTime().clock)
    await leases.acquire("job:a", "one", 10)
    assert await leases.acquire("job:b", "two", 10)
