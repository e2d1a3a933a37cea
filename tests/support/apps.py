"""Small applications that tests serve with `lastro serve MODULE:APP --factory`."""

from __future__ import annotations

import os
import time

from fastapi import FastAPI

import lastro

__all__ = ["blocking_app", "leaky_app"]


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


def leaky_app() -> FastAPI:
    """A lastro service whose `/leak` keeps `mb` MiB per call for good, as a cache that never evicts does."""
    app = lastro.create_app(lastro.get_settings())
    kept: list[bytes] = []

    @app.get("/leak")
    async def leak(mb: int = 20) -> dict[str, int]:
        kept.append(b"\x01" * (mb * 1024 * 1024))  # written, so resident: not a lazily zeroed page
        return {"pid": os.getpid(), "kept_mb": len(kept) * mb}

    @app.get("/pid")
    async def pid() -> dict[str, int]:
        return {"pid": os.getpid()}

    return app
