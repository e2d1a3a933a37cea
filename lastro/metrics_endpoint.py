"""`GET /metrics`: the Prometheus text of the whole service, every worker summed, for operators only.

It answers `Authorization: Bearer <METRICS_TOKEN>` or a client in `METRICS_NETWORKS` (loopback by default),
else 401 or 403 as problem+json, like `/health` detail. It is not rate limited and not in the OpenAPI
document, and its own requests are counted under their own route label, `/metrics`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from lastro.access import OperatorAccess
from lastro.errors import ServiceUnavailable
from lastro.observability.metrics import Metrics
from lastro.observability.requests import IN_FLIGHT
from lastro.ratelimit.policy import rate_limit
from lastro.settings import Settings

__all__ = ["metrics_router"]


def metrics_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    access = OperatorAccess.metrics(settings)

    @router.get("/metrics", include_in_schema=False)
    @rate_limit(None)  # a scraper is never throttled
    async def metrics(request: Request) -> Response:
        refusal = access.refusal(request.client.host if request.client else None, request.headers)
        if refusal is not None:
            return refusal
        opened: Metrics | None = request.app.state.lastro.metrics
        if opened is None:
            raise ServiceUnavailable("the metrics are not open yet")
        opened.in_progress.set(len(IN_FLIGHT))  # this worker's now; the others' as their monitor last saw
        body, content_type = opened.render()
        return Response(body, media_type=content_type)

    return router
