"""Liveness, readiness and the detailed health document, from a registry of named checks.

- `GET /health/live`: 200 while the process serves; it checks nothing else, so a database outage never
  makes an orchestrator kill healthy workers.
- `GET /health/ready`: 200 when every check passes, else 503; 503 `"status": "draining"` too while the
  service is drained (`lastro drain`, `lastro.control`), however healthy.
- `GET /health`: every check's detail, uptime and the answering worker's pid; 503 when unhealthy. It tells
  versions, pids and dependency errors, so it answers only `Authorization: Bearer <HEALTH_TOKEN>` or a client
  in `HEALTH_NETWORKS` (loopback by default; not a request forwarded by a proxy outside TRUSTED_PROXIES), in
  every environment: otherwise 401 (a token would open it)
  or 403 (no HEALTH_TOKEN is set), as problem+json. live and ready stay open to orchestrators.

Every check runs with a timeout, and a check still running from an earlier probe is not started again,
so a hung dependency can neither hang the probe nor pile up threads.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from lastro.access import OperatorAccess
from lastro.errors import one_line_with_type
from lastro.openapi import problems
from lastro.ratelimit.policy import rate_limit
from lastro.settings import Settings

__all__ = ["CheckFailed", "CheckResult", "HealthCheck", "HealthRegistry", "detail_refusal", "health_router"]

CheckResult = dict[str, Any]
CheckFunction = Callable[[], Awaitable[CheckResult | None]]


class CheckFailed(Exception):
    """Raised by a check that fails but still has figures to show beside its error (free bytes, say)."""

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass
class HealthCheck:
    """A named dependency check: returns extra detail, or raises when the dependency is unhealthy."""

    name: str
    check: CheckFunction
    timeout: float = 2.0
    critical: bool = True
    _running: asyncio.Task[CheckResult | None] | None = None

    async def run(self) -> CheckResult:
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self.check())
        try:
            async with asyncio.timeout(self.timeout):  # not wait_for, which can lose a cancellation on 3.11
                detail = await asyncio.shield(self._running)
        except TimeoutError:
            return {"status": "error", "error": f"no answer within {self.timeout:g} s"}
        except CheckFailed as exc:
            return {"status": "error", "error": str(exc), **exc.detail}
        except Exception as exc:
            return {"status": "error", "error": one_line_with_type(exc)}
        return {"status": "ok", **(detail or {})}


class HealthRegistry:
    def __init__(self, *, version: str, started_at: float | None = None) -> None:
        self.version = version
        self.started_at = started_at if started_at is not None else time.time()
        self._checks: dict[str, HealthCheck] = {}
        self.draining: Callable[[], bool] = lambda: False  # `lastro drain` is on: ready answers 503

    def add(self, name: str, check: CheckFunction, *, timeout: float = 2.0, critical: bool = True) -> None:
        self._checks[name] = HealthCheck(name, check, timeout=timeout, critical=critical)

    async def run(self) -> tuple[bool, dict[str, CheckResult]]:
        names = list(self._checks)
        results = await asyncio.gather(*(self._checks[name].run() for name in names))
        by_name = dict(zip(names, results, strict=True))
        healthy = all(
            result["status"] == "ok" for name, result in by_name.items() if self._checks[name].critical
        )
        return healthy, by_name

    async def document(self) -> tuple[bool, dict[str, Any]]:
        healthy, checks = await self.run()
        draining = self.draining()
        return healthy, {
            "status": ("draining" if draining else "healthy") if healthy else "unhealthy",
            "draining": draining,
            "timestamp": datetime.now(UTC).isoformat(),
            "version": self.version,
            "checks": checks,
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "pid": os.getpid(),
        }


def _registry(request: Request) -> HealthRegistry:
    registry: HealthRegistry = request.app.state.lastro.health
    return registry


# Documented in /openapi.json: a failing check answers 503 with the same JSON document, not a problem.
_UNHEALTHY = {"description": "a check failed", "content": {"application/json": {"schema": {}}}}


def health_router() -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live")
    @rate_limit(None)  # probes and monitors are never throttled
    async def live() -> dict[str, Any]:
        return {"status": "alive", "pid": os.getpid()}

    @router.get("/ready", responses={503: _UNHEALTHY})
    @rate_limit(None)
    async def ready(request: Request) -> JSONResponse:
        registry = _registry(request)
        healthy, checks = await registry.run()
        failing = sorted(name for name, result in checks.items() if result["status"] != "ok")
        draining = registry.draining()
        status = "draining" if draining else "ready" if healthy else "not ready"
        body = {"status": status, "failing": failing}
        return JSONResponse(body, status_code=200 if healthy and not draining else 503)

    @router.get("", responses={503: _UNHEALTHY, **problems(401, 403)})
    @rate_limit(None)
    async def detail(request: Request) -> Response:
        settings: Settings = request.app.state.lastro.settings
        client = request.client.host if request.client else None
        refusal = detail_refusal(settings, client, request.headers)
        if refusal is not None:
            return refusal
        healthy, document = await _registry(request).document()
        return JSONResponse(document, status_code=200 if healthy else 503)

    return router


def detail_refusal(settings: Settings, client: str | None, headers: Mapping[str, str]) -> Response | None:
    """None when the caller may read the health detail, else the 401 or 403 that refuses it.

    `headers` are the request's, read without case (starlette's `Headers`).
    """
    access = OperatorAccess.health(settings)
    return access.refusal(client, headers)
