"""`GET /metrics`: the Prometheus text of the whole service, every worker summed, for operators only.

It answers `Authorization: Bearer <METRICS_TOKEN>` or a client in `METRICS_NETWORKS` (loopback by default),
else 401 or 403 as problem+json, like `/health` detail. It is not rate limited and not in the OpenAPI
document, and its own requests are counted under their own route label, `/metrics`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from lastro.access import OperatorAccess
from lastro.http.problem import ProblemResponse
from lastro.observability.metrics import METRICS_PATH, Metrics
from lastro.observability.requests import IN_FLIGHT
from lastro.settings import Settings

__all__ = ["metrics_routes", "operator_metrics"]


def metrics_routes(settings: Settings) -> list[BaseRoute]:
    """The route, for the operator's router (`lastro.http.operator_routes`): outside the application's
    routes, so never rate limited and not in its OpenAPI document."""
    access = OperatorAccess.metrics(settings)

    async def metrics(request: Request) -> Response:
        opened = operator_metrics(request, access)
        if isinstance(opened, Response):
            return opened
        opened.in_progress.set(len(IN_FLIGHT))  # this worker's now; the others' as their monitor last saw
        body, content_type = opened.render()
        return Response(body, media_type=content_type)

    return [Route(METRICS_PATH, metrics, methods=["GET"])]


def operator_metrics(request: Request, access: OperatorAccess) -> Metrics | Response:
    """The service's metrics when `access` lets the caller read them, else the response that refuses:
    401/403, or 503 before start-up has opened them. Answered, never raised: the operator's routes run
    outside the application's exception handlers."""
    refusal = access.refusal(request.client.host if request.client else None, request.headers)
    if refusal is not None:
        return refusal
    metrics: Metrics | None = request.app.state.lastro.metrics
    if metrics is None:
        return ProblemResponse(503, "the metrics are not open yet", headers={"Retry-After": "1"})
    return metrics
