"""Retry policies as small composable objects: when to stop, how long to wait, with clock and sleep injected.

```
policy = RetryPolicy(
    stop=StopAfterAttempt(5) | StopAfterDelay(5.0),
    wait=WaitExponentialJitter(initial=0.005, maximum=0.25),
)
result = await policy.call(run_unit_of_work, retryable=lambda error: classify(error).retryable)
```

The policy re-runs the callable it is given, which is always a whole unit of work: a retried write never
keeps half of an earlier attempt, because each attempt is its own transaction that was rolled back.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

__all__ = [
    "Attempt",
    "RetryPolicy",
    "Stop",
    "StopAfterAttempt",
    "StopAfterDelay",
    "StopAny",
    "Wait",
    "WaitExponentialJitter",
]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


@dataclass(frozen=True)
class Attempt:
    """What a stop or wait strategy sees: the attempt that just failed, and the time since the first."""

    number: int
    elapsed: float
    error: BaseException


class Stop(Protocol):
    def __call__(self, attempt: Attempt, next_delay: float) -> bool: ...


class Wait(Protocol):
    def __call__(self, attempt: Attempt) -> float: ...


class _Combinable:
    def __or__(self, other: Stop) -> StopAny:
        return StopAny((self, other))  # type: ignore[arg-type]


@dataclass(frozen=True)
class StopAfterAttempt(_Combinable):
    """Stop once `attempts` calls have been made."""

    attempts: int

    def __call__(self, attempt: Attempt, next_delay: float) -> bool:
        return attempt.number >= self.attempts


@dataclass(frozen=True)
class StopAfterDelay(_Combinable):
    """Stop when the next attempt would start after `seconds` since the first one."""

    seconds: float

    def __call__(self, attempt: Attempt, next_delay: float) -> bool:
        return attempt.elapsed + next_delay >= self.seconds


@dataclass(frozen=True)
class StopAny(_Combinable):
    """Stop when any of the strategies says so."""

    strategies: tuple[Stop, ...]

    def __call__(self, attempt: Attempt, next_delay: float) -> bool:
        return any(strategy(attempt, next_delay) for strategy in self.strategies)


@dataclass(frozen=True)
class WaitExponentialJitter:
    """`initial * 2**(n-1)` capped at `maximum`, scaled by a random factor in [1 - jitter, 1]."""

    initial: float = 0.005
    maximum: float = 0.25
    jitter: float = 0.5
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def __call__(self, attempt: Attempt) -> float:
        delay = min(self.maximum, self.initial * 2.0 ** (attempt.number - 1))
        return delay * (1 - self.jitter * self.rng())


async def _asyncio_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Calls an async callable until it succeeds, a non-retryable error occurs, or `stop` says so."""

    stop: Stop = field(default_factory=lambda: StopAfterAttempt(5) | StopAfterDelay(5.0))
    wait: Wait = field(default_factory=WaitExponentialJitter)
    sleep: Sleep = _asyncio_sleep
    clock: Clock = time.monotonic

    async def call(
        self,
        function: Callable[[], Awaitable[T]],
        *,
        retryable: Callable[[BaseException], bool],
        on_retry: Callable[[Attempt, float], None] | None = None,
    ) -> T:
        started = self.clock()
        number = 0
        while True:
            number += 1
            try:
                return await function()
            except Exception as error:
                if not retryable(error):
                    raise
                attempt = Attempt(number=number, elapsed=self.clock() - started, error=error)
                delay = self.wait(attempt)
                if self.stop(attempt, delay):
                    raise
                if on_retry is not None:
                    on_retry(attempt, delay)
                await self.sleep(delay)
