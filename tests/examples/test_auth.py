"""Passwords: checked in a bulkhead, unknown users at a wrong password's cost. TokenCodec: verified tokens
are remembered, but never past their expiry or beyond the cache's size."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator

import anyio
import pytest
from argon2 import PasswordHasher
from fastapi import HTTPException

from examples.orders.auth import STAND_IN_HASH, Passwords, Principal, TokenCodec
from lastro.bulkhead import Bulkhead
from lastro.errors import ServiceUnavailable
from tests.support.clock import FakeTime

SECRET = "s" * 48
ALICE = Principal(user_id=1, tenant_id=7, is_admin=False)


def real_time() -> FakeTime:
    """Starts at the real time, since PyJWT checks `exp` and `iat` against it, then moves when told."""
    return FakeTime(time.time())


def test_a_token_checks_to_its_principal_again_and_again() -> None:
    """The second check of a token gives the same principal as the first."""
    codec = TokenCodec(SECRET, ttl=60, clock=real_time().clock)
    token = codec.issue(ALICE)
    assert codec.check(token) == ALICE
    assert codec.check(token) == ALICE


def test_a_remembered_token_is_refused_once_expired() -> None:
    """A token checked while valid gets 401 once its exp has passed."""
    fake_time = real_time()
    codec = TokenCodec(SECRET, ttl=60, clock=fake_time.clock)
    token = codec.issue(ALICE)
    codec.check(token)
    fake_time.now += 61
    with pytest.raises(HTTPException) as refused:
        codec.check(token)
    assert refused.value.status_code == 401


def test_a_token_signed_with_another_key_is_refused() -> None:
    """A token from another secret never checks, remembered or not."""
    fake_time = real_time()
    foreign = TokenCodec("o" * 48, ttl=60, clock=fake_time.clock).issue(ALICE)
    with pytest.raises(HTTPException):
        TokenCodec(SECRET, ttl=60, clock=fake_time.clock).check(foreign)


def test_the_cache_keeps_at_most_its_size() -> None:
    """Past cache_size tokens, the oldest are forgotten and checked again when they come back."""
    fake_time = real_time()
    codec = TokenCodec(SECRET, ttl=60, clock=fake_time.clock, cache_size=2)
    tokens = [codec.issue(Principal(user_id, 7, False)) for user_id in (1, 2, 3)]
    for token in tokens:
        codec.check(token)
    assert [codec.check(token).user_id for token in tokens] == [1, 2, 3]


@pytest.fixture
def hashing() -> Iterator[Bulkhead]:
    bulkhead = Bulkhead("password hashing", capacity=1, wait=5)
    yield bulkhead
    bulkhead.close()


@pytest.mark.anyio
async def test_a_password_checks_against_its_hash_and_no_other(hashing: Bulkhead) -> None:
    """The right password matches its hash; a wrong one does not."""
    passwords = await Passwords.open(hashing)
    password_hash = await passwords.hash("correct horse")
    assert await passwords.verify(password_hash, "correct horse")
    assert not await passwords.verify(password_hash, "wrong horse")


@pytest.mark.anyio
async def test_an_unknown_user_never_matches(hashing: Bulkhead) -> None:
    """No hash (no such user) is never a match, not even with the password behind the stand-in hash."""
    passwords = await Passwords.open(hashing)
    assert not await passwords.verify(None, "not a real password")
    assert not await passwords.verify(None, "admin")


def test_the_stand_in_hash_has_the_parameters_of_a_new_hash() -> None:
    """The constant hash an unknown user is checked against costs what a user's hash costs to check."""
    assert not PasswordHasher().check_needs_rehash(STAND_IN_HASH)
    assert PasswordHasher().verify(STAND_IN_HASH, "not a real password")


@pytest.mark.anyio
async def test_an_unknown_user_costs_about_what_a_wrong_password_costs(hashing: Bulkhead) -> None:
    """The median check of an unknown user's password is within 0.5x-2x of a wrong password's."""
    passwords = await Passwords.open(hashing)
    password_hash = await passwords.hash("correct horse")

    async def median(password_hash: str | None) -> float:
        durations = []
        for _ in range(3):
            started = time.perf_counter()
            await passwords.verify(password_hash, "wrong horse")
            durations.append(time.perf_counter() - started)
        return statistics.median(durations)

    ratio = await median(None) / await median(password_hash)
    assert 0.5 < ratio < 2.0, ratio


@pytest.mark.anyio
async def test_a_check_beyond_the_hashing_capacity_is_refused(hashing: Bulkhead) -> None:
    """With every hashing slot taken, a password check gets ServiceUnavailable (503) once its wait ends."""
    bulkhead = hashing
    bulkhead.wait = 0.05
    passwords = await Passwords.open(bulkhead)
    released = threading.Event()
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(bulkhead.run, released.wait, 5.0)
            for _ in range(5000):  # until the slot is taken, at most 5 s
                if bulkhead.running:
                    break
                await anyio.sleep(0.001)
            with pytest.raises(ServiceUnavailable):
                await passwords.verify(None, "anything")
            released.set()
    finally:
        released.set()
