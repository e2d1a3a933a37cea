"""Small applications that tests serve with `lastro serve MODULE:APP --factory`."""

from __future__ import annotations

import time

from fastapi import FastAPI

import lastro

__all__ = ["blocking_app"]


def blocking_app() -> FastAPI:
    """A lastro service whose `/block` holds the event loop, as a CPU-bound `async def` handler does."""
    app = lastro.create_app(lastro.get_settings())
    logger = lastro.get_logger("tests.blocking")

    @app.get("/block")
    async def block(seconds: float = 0.5) -> dict[str, bool]:
        logger.info("block ran")
        time.sleep(seconds)  # noqa: ASYNC251 - holds the loop on purpose: the requests behind it queue as tasks
        return {"ok": True}

    return app
