"""`create_app(settings)` and `install(app, settings)`: one call turns a FastAPI app into a lastro service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from lastro.control import ControlDirectory, control_directory
from lastro.dashboard import dashboard_routes
from lastro.docs import hide_docs
from lastro.errors import (
    COMMIT_OUTCOME_UNKNOWN_TYPE,
    STORAGE_FULL_TYPE,
    CommitOutcomeUnknown,
    RateLimited,
    ServiceUnavailable,
    StorageFull,
)
from lastro.health import HealthRegistry, health_router
from lastro.http.access_log import AccessLogMiddleware
from lastro.http.body_limit import BodyLimitMiddleware
from lastro.http.body_timeout import BodyTimeoutMiddleware
from lastro.http.cors import CORSMiddleware
from lastro.http.in_flight import InFlightLimitMiddleware
from lastro.http.methods import allowed_methods
from lastro.http.metrics import MetricsMiddleware
from lastro.http.operator_routes import OperatorRoutesMiddleware
from lastro.http.problem import ProblemResponse
from lastro.http.rate_limit import RateLimitHeadersMiddleware
from lastro.http.request_id import RequestIdMiddleware
from lastro.http.request_timeout import RequestTimeoutMiddleware
from lastro.http.security_headers import SecurityHeaders
from lastro.http.server_errors import ServerErrorMiddleware
from lastro.http.trusted_host import TrustedHostMiddleware
from lastro.http.validation import validation_problem
from lastro.lifecycle import wrap_lifespan
from lastro.metrics_endpoint import metrics_routes
from lastro.observability.logging import configure_logging
from lastro.observability.metrics import (
    DASHBOARD_ASSETS_PREFIX,
    DASHBOARD_DATA_PATH,
    DASHBOARD_PATH,
    METRICS_PATH,
)
from lastro.observability.tracing import Tracing, check_tracing
from lastro.openapi import install_openapi
from lastro.pages import install_page_limits
from lastro.rate_limits import Identify
from lastro.settings import Settings
from lastro.state import ServiceState

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["create_app", "install"]


def create_app(
    settings: Settings,
    *,
    identify: Identify | None = None,
    span_exporter: SpanExporter | None = None,
    **fastapi_options: object,
) -> FastAPI:
    """A new FastAPI application with everything lastro provides installed.

    `identify(connection)` names the authenticated user of a request, or None: rate limits then count per
    user rather than per client address. `span_exporter`, with `TRACING` on, receives the spans instead of
    the exporter `TRACING` names.

    FastAPI's own OpenTelemetry spans and metrics are off: lastro traces requests (`TRACING`) and counts
    them (`/metrics`), and FastAPI's would double them whenever a global provider is set. Pass
    `telemetry={...}` to turn them back on.
    """
    options: dict[str, object] = {
        "title": settings.SERVICE_NAME,
        "version": settings.SERVICE_VERSION,
        "telemetry": {"tracing": False, "metrics": False, "logs": False},
    }
    options.update(fastapi_options)
    app = FastAPI(**options)  # type: ignore[arg-type]
    install(app, settings, identify=identify, span_exporter=span_exporter)
    return app


def install(
    app: FastAPI,
    settings: Settings,
    *,
    identify: Identify | None = None,
    span_exporter: SpanExporter | None = None,
) -> FastAPI:
    """Add logging, request ids, access logs, limits, problem+json errors, health checks and the lifecycle;
    take FastAPI's /docs, /redoc and /openapi.json out unless `settings.docs_enabled`."""
    settings.check_production()
    check_tracing(settings, exporter_given=span_exporter is not None)
    configure_logging(settings.LOG_LEVEL, settings.log_format)
    state = ServiceState(
        settings=settings,
        health=HealthRegistry(version=settings.SERVICE_VERSION),
        identify=identify,
        tracing=None if settings.TRACING == "off" else Tracing(settings, span_exporter),
    )
    state.health.draining = ControlDirectory(control_directory(settings)).draining
    app.state.lastro = state
    _add_middleware(app, state)
    _limit_forms(app, settings)
    _add_exception_handlers(app)
    app.include_router(health_router())
    if not settings.docs_enabled:
        hide_docs(app)
    install_openapi(app)
    install_page_limits(app, settings.MAX_PAGE_SIZE)
    wrap_lifespan(app, state)
    return app


def _add_middleware(app: FastAPI, state: ServiceState) -> None:
    settings, tracing = state.settings, state.tracing
    # add_middleware puts each new layer outside the previous one: innermost first.
    if settings.METRICS_ENABLED:
        routes, paths, prefixes = metrics_routes(settings), [METRICS_PATH], []
        if settings.DASHBOARD_ENABLED:  # it reads the metrics: no metrics, no dashboard
            routes += dashboard_routes(settings)
            paths += [DASHBOARD_PATH, DASHBOARD_DATA_PATH]
            prefixes += [DASHBOARD_ASSETS_PREFIX]
        app.add_middleware(OperatorRoutesMiddleware, routes=routes, paths=paths, prefixes=prefixes)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(ServerErrorMiddleware)
    if settings.MAX_BODY_BYTES:
        app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.MAX_BODY_BYTES)
    # Inside the in-flight limit: a body that times out gives its slot back with its 408.
    app.add_middleware(BodyTimeoutMiddleware, timeout=settings.BODY_TIMEOUT, min_rate=settings.BODY_MIN_RATE)
    if settings.REQUEST_TIMEOUT:  # inside the in-flight limit: a request cut at its deadline frees its slot
        app.add_middleware(RequestTimeoutMiddleware, timeout=settings.REQUEST_TIMEOUT)
    if settings.MAX_IN_FLIGHT or settings.MAX_LOOP_LAG:
        app.add_middleware(
            InFlightLimitMiddleware, max_in_flight=settings.MAX_IN_FLIGHT, max_loop_lag=settings.MAX_LOOP_LAG
        )
    if "*" not in settings.ALLOWED_HOSTS:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.ALLOWED_HOSTS)
    if settings.CORS_ORIGINS:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.CORS_ORIGINS,
            allow_credentials=settings.CORS_ALLOW_CREDENTIALS,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[
                "X-Request-ID",
                "ETag",
                "Location",
                "Retry-After",
                "RateLimit",
                "RateLimit-Policy",
            ],
        )
    if settings.METRICS_ENABLED:
        app.add_middleware(MetricsMiddleware, state=state)
    app.add_middleware(AccessLogMiddleware, slow_request_seconds=settings.SLOW_REQUEST_SECONDS)
    if tracing is not None:
        # Outside the access log, whose line is then written while the request's span is current and
        # carries its ids; outside every layer that answers, so a 413 or a 503 is traced too. Imported only
        # here: with TRACING off, OpenTelemetry is neither installed nor loaded.
        from lastro.http.tracing import TracingMiddleware

        app.add_middleware(TracingMiddleware, tracing=tracing)
    # Outside every layer that answers: its errors get the id and the security headers too.
    security_headers = SecurityHeaders(
        referrer_policy=settings.REFERRER_POLICY, hsts_seconds=settings.HSTS_SECONDS
    )
    app.add_middleware(RequestIdMiddleware, security_headers=security_headers)


def _limit_forms(app: FastAPI, settings: Settings) -> None:
    # FastAPI hands the app's form limits to starlette's parsers for every Form/File/UploadFile it parses
    # (`FastAPI(form_limits=...)`); a router or route that sets its own still overrides them.
    app.router.form_limits = {
        **app.router.form_limits,
        "max_fields": settings.MAX_MULTIPART_PARTS,
        "max_files": settings.MAX_MULTIPART_FILES,
    }


def _add_exception_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code < 200 or exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request.app.routes, request.scope)
        return ProblemResponse(exc.status_code, str(exc.detail), headers=headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return validation_problem(exc.errors())

    async def unavailable(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceUnavailable)
        return ProblemResponse(503, exc.detail, headers={"Retry-After": str(exc.retry_after)})

    async def rate_limited(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RateLimited)
        return ProblemResponse(429, exc.detail, headers=exc.headers)

    async def storage_full(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StorageFull)
        disk = request.app.state.lastro.disk
        if disk is not None:  # logs it (throttled) and holds ready at 503 for a while
            disk.full(exc.detail)
        return ProblemResponse(507, exc.detail, type=STORAGE_FULL_TYPE)

    async def outcome_unknown(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CommitOutcomeUnknown)
        return ProblemResponse(504, exc.detail, type=COMMIT_OUTCOME_UNKNOWN_TYPE)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ServiceUnavailable, unavailable)
    app.add_exception_handler(RateLimited, rate_limited)
    app.add_exception_handler(StorageFull, storage_full)
    app.add_exception_handler(CommitOutcomeUnknown, outcome_unknown)
