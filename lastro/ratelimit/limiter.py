"""`RateLimiter`: checks rates against the shared store, and what happens when that store is gone.

When the shared store (Redis) does not answer, a general limit fails open onto this worker's own counts
(`LocalStore`: the limit then holds per worker, not per service) with a throttled warning and a counter,
while a limit that must fail closed (login) refuses with `RateLimitUnavailable` (503). After a failure the
store is left alone for `retry_interval` seconds, so that no request waits for a dead server's timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from lastro.errors import RateLimitUnavailable, one_line
from lastro.observability.logging import get_logger
from lastro.observability.throttle import LogThrottle
from lastro.ratelimit.stores import Check, LocalStore, Store, StoreUnavailable
from lastro.ratelimit.window import Decision

__all__ = ["RateLimiter"]

logger = get_logger("lastro.ratelimit")


class RateLimiter:
    def __init__(
        self,
        store: Store,
        *,
        fallback: LocalStore | None = None,
        retry_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.fallback = fallback if fallback is not None else LocalStore()
        self.retry_interval = retry_interval
        self._clock = clock
        self._down_until = 0.0
        self._failing = False
        self._throttle = LogThrottle(clock=clock)
        self.fallbacks = 0  # checks answered by this worker's own counts because the store was down
        self.refusals = 0  # fail-closed checks refused because the store was down
        self.last_error: str | None = None

    async def hit(
        self, checks: Sequence[Check], cost: int = 1, *, fail_closed: bool = False
    ) -> list[Decision]:
        """A decision per check; raises `RateLimitUnavailable` when `fail_closed` and the store is down."""
        if self._clock() >= self._down_until:
            try:
                decisions = await self.store.hit(checks, cost)
            except StoreUnavailable as exc:
                self._failed(exc)
            else:
                self._failing = False
                return decisions
        if fail_closed:
            self.refusals += 1
            raise RateLimitUnavailable(
                "the rate-limit store is unavailable; try again shortly",
                retry_after=max(1, round(self.retry_interval)),
            )
        self.fallbacks += 1
        return self.fallback.hit_now(checks, cost)

    async def probe(self) -> None:
        """Ask the store whether it answers (what `/health` does), so that an idle worker knows too."""
        try:
            await self.store.ping()
        except StoreUnavailable as exc:
            self._failed(exc)
        else:
            self._failing = False
            self._down_until = 0.0

    def _failed(self, exc: StoreUnavailable) -> None:
        self._failing = True
        self._down_until = self._clock() + self.retry_interval
        self.last_error = one_line(exc)
        suppressed = self._throttle.admit("store")
        if suppressed is not None:
            logger.warning(
                "rate-limit store unavailable: general limits hold per worker, login is refused",
                store=self.store.name,
                error=self.last_error,
                suppressed=suppressed,
            )

    @property
    def degraded(self) -> bool:
        """Whether the store's last answer was a failure: limits hold per worker until it answers again."""
        return self._failing

    def statistics(self) -> dict[str, Any]:
        return {
            "store": self.store.name,
            "degraded": self.degraded,
            "fallbacks": self.fallbacks,
            "refusals": self.refusals,
            "last_error": self.last_error,
        }

    async def close(self) -> None:
        await self.store.close()
        await self.fallback.close()
