"""TokenCodec: verified tokens are remembered, but never past their expiry or beyond the cache's size."""

from __future__ import annotations

import time

import pytest
from fastapi import HTTPException

from examples.orders.auth import Principal, TokenCodec

SECRET = "s" * 48
ALICE = Principal(user_id=1, tenant_id=7, is_admin=False)


class Clock:
    """Starts at the real time, since PyJWT checks `exp` and `iat` against it, then moves when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_token_checks_to_its_principal_again_and_again() -> None:
    """The second check of a token gives the same principal as the first."""
    codec = TokenCodec(SECRET, ttl=60, clock=Clock())
    token = codec.issue(ALICE)
    assert codec.check(token) == ALICE
    assert codec.check(token) == ALICE


def test_a_remembered_token_is_refused_once_expired() -> None:
    """A token checked while valid gets 401 once its exp has passed."""
    clock = Clock()
    codec = TokenCodec(SECRET, ttl=60, clock=clock)
    token = codec.issue(ALICE)
    codec.check(token)
    clock.now += 61
    with pytest.raises(HTTPException) as refused:
        codec.check(token)
    assert refused.value.status_code == 401


def test_a_token_signed_with_another_key_is_refused() -> None:
    """A token from another secret never checks, remembered or not."""
    clock = Clock()
    foreign = TokenCodec("o" * 48, ttl=60, clock=clock).issue(ALICE)
    with pytest.raises(HTTPException):
        TokenCodec(SECRET, ttl=60, clock=clock).check(foreign)


def test_the_cache_keeps_at_most_its_size() -> None:
    """Past cache_size tokens, the oldest are forgotten and checked again when they come back."""
    clock = Clock()
    codec = TokenCodec(SECRET, ttl=60, clock=clock, cache_size=2)
    tokens = [codec.issue(Principal(user_id, 7, False)) for user_id in (1, 2, 3)]
    for token in tokens:
        codec.check(token)
    assert [codec.check(token).user_id for token in tokens] == [1, 2, 3]
