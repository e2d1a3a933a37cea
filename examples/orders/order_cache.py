"""Order reads by id, cached across workers: `lastro.open_cache` with an invalidation per change.

The cache holds the response's body as sent (the JSON text) with the order's version, so a hit answers
the same bytes and ETag as a read from the database. An update or a delete invalidates the order's key
through a step of `Changes`, in its write unit (`Cache.invalidate_on_commit`): once the PATCH has answered,
no worker serves the old version (see `lastro.SharedCache` for what that rests on). Creating an order
invalidates nothing: it was never cached, and a 404 is not cached either. While the circuit breaker
holds the database for unreachable, reads go to it (and get its 503) instead of the cache.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from sqlalchemy import Connection

import lastro
from examples.orders import queries
from examples.orders.changes import OrderChange, Step
from examples.orders.settings import OrdersSettings
from lastro.db.breaker import BreakerState
from lastro.http import etags

__all__ = ["CachedOrders", "OrderReads", "open_order_cache"]

Cached = dict[str, Any]  # {"body": the JSON text, "version": the order's version}


class CachedOrders:
    """The orders by id, through `cache` when there is one."""

    def __init__(self, cache: lastro.Cache[Cached] | None) -> None:
        self.cache = cache

    async def read(self, unit: lastro.UnitOfWork, tenant_id: int, order_id: int) -> Response:
        """The order as `GET /api/orders/{id}` answers it (NotFound propagates, and is not cached)."""

        async def load() -> Cached:
            order = await unit.run(queries.get_order, tenant_id, order_id)
            body = bytes(lastro.JSONResponse(order).body).decode()  # as the uncached route rendered it
            return {"body": body, "version": order["version"]}

        if self.cache is None or unit.transactions.breaker.state is not BreakerState.CLOSED:
            # While the database is known unreachable, reads answer as it does (503), not from memory:
            # /health/ready and the reads agree, and no invalidation could be trusted meanwhile.
            cached = await load()
        else:
            cached = await self.cache.get_or_load(_key(tenant_id, order_id), load)
        etag = etags.version_etag(cached["version"])
        return Response(cached["body"], media_type="application/json", headers={"ETag": etag})

    def invalidation(self) -> Step:
        """The `Changes` step that drops an updated or deleted order from every worker's cache."""
        cache = self.cache

        def invalidate(connection: Connection, change: OrderChange) -> None:
            if cache is not None and change.type != "order.created":
                cache.invalidate_on_commit(connection, _key(change.tenant_id, change.order_id))

        return invalidate

    def check(self) -> Callable[[], Awaitable[dict[str, Any]]]:
        """For `/health` (not critical): the cache's bounds and counters, or that it is off."""
        cache = self.cache

        async def check() -> dict[str, Any]:
            return cache.statistics() if cache is not None else {"enabled": False}

        return check

    async def close(self) -> None:
        if self.cache is not None:
            await self.cache.close()


def open_order_cache(settings: OrdersSettings, state: lastro.ServiceState) -> CachedOrders:
    """With ORDER_CACHE_ENABLED, on Redis (REDIS_URL) or on the service's broadcast; else reads go through."""
    if not settings.ORDER_CACHE_ENABLED or (state.broadcast is None and not settings.REDIS_URL):
        return CachedOrders(None)
    cache: lastro.Cache[Cached] = lastro.open_cache(
        "orders",
        settings,
        state.broadcast,
        max_items=settings.ORDER_CACHE_SIZE,
        max_bytes=settings.ORDER_CACHE_MAX_BYTES,
        ttl=settings.ORDER_CACHE_TTL,
    )
    return CachedOrders(cache)


def _key(tenant_id: int, order_id: int) -> str:
    return f"{tenant_id}:{order_id}"


async def _order_reads(request: Request) -> CachedOrders:
    orders: CachedOrders = request.app.state.order_reads
    return orders


OrderReads = Annotated[CachedOrders, Depends(_order_reads)]
