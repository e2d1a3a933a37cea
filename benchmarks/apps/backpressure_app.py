"""A lastro service whose endpoints burn about 2 ms of CPU per request: an overloaded worker on demand.

Serve it with `lastro serve benchmarks.apps.backpressure_app:create_app --factory`. Everything lastro
installs is on, including the in-flight cap (`MAX_IN_FLIGHT`), so with more connections than one worker can
serve in time the cap decides between queueing every request and refusing the excess with a fast 503.

- `GET /burn`: an `async def` endpoint; the loop runs on the event loop and never yields.
- `GET /burn-sync`: a `def` endpoint; FastAPI runs it in its thread pool, so the event loop stays free
  to accept and admit (or refuse) the next requests while earlier ones wait for the GIL.

The work is a fixed number of loop iterations, calibrated once per process to about `BURN_SECONDS` of CPU,
so that threads sharing the GIL do the same work per request whatever the contention.
"""

from __future__ import annotations

import time

from fastapi import FastAPI

import lastro

__all__ = ["BURN_SECONDS", "create_app"]

BURN_SECONDS = 0.002


def spin(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i ^ (total & 0xFF)
    return total


def calibrate(seconds: float) -> int:
    """Iterations of `spin` that take about `seconds` of CPU in this process (best of 5 samples)."""
    sample = 20_000
    best = min(_cpu_time(sample) for _ in range(5))
    return max(1, round(sample * seconds / best))


def _cpu_time(iterations: int) -> float:
    start = time.thread_time()
    spin(iterations)
    return max(time.thread_time() - start, 1e-9)


def create_app() -> FastAPI:
    """The service: lastro's defaults from the environment plus the two burning endpoints."""
    app = lastro.create_app(lastro.get_settings())
    iterations = calibrate(BURN_SECONDS)

    @app.get("/burn")
    async def burn() -> dict[str, int]:
        return {"iterations": iterations, "result": spin(iterations)}

    @app.get("/burn-sync")
    def burn_sync() -> dict[str, int]:
        return {"iterations": iterations, "result": spin(iterations)}

    return app
