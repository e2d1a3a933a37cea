"""Routes for tests and load runs, mounted in development only: production does not serve them."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query

import lastro

__all__ = ["router"]

router = APIRouter(prefix="/api")
logger = lastro.get_logger("orders")


@router.get("/ping")
async def ping(delay: float = Query(default=0.0, ge=0.0, le=30.0)) -> dict[str, Any]:
    """Answer after `delay` seconds: lets a client hold a request in flight."""
    logger.info("ping received", delay=delay)
    if delay:
        await asyncio.sleep(delay)
    return {"pong": True}
