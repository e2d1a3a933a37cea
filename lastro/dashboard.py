"""The live dashboard: `GET /admin/dashboard` (a page) and `GET /admin/dashboard.json` (its figures).

The page, its script and its stylesheet ship in the package (`lastro/observability/dashboard/`) and load
nothing from elsewhere. The page holds no data, so it is served to anyone; the JSON document answers the
operators of `/metrics` (`METRICS_TOKEN` or `METRICS_NETWORKS`), and the page asks for the token when it
gets a 401. The document is public API, described field by field in the README ("Dashboard"); the window
its rates cover is explained in `lastro.observability.dashboard_data`. None of these routes is rate
limited, shed by back-pressure or listed in the OpenAPI document, and the dashboard's own requests are left
out of its figures.
"""

from __future__ import annotations

import hashlib
import os
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

import psutil
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from lastro.access import OperatorAccess
from lastro.http.problem import ProblemResponse
from lastro.metrics_endpoint import operator_metrics
from lastro.monitor import worker_report
from lastro.observability.dashboard_data import Reading, ReadingHistory, window_figures
from lastro.observability.metrics import (
    DASHBOARD_ASSETS_PREFIX,
    DASHBOARD_DATA_PATH,
    DASHBOARD_PATH,
    Metrics,
)
from lastro.observability.slowest import read_published
from lastro.settings import Settings

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["dashboard_document", "dashboard_routes"]

ASSET_TYPES = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}
# The page runs only its own files: no inline script or style, nothing from another origin.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SLOWEST_KEPT = 10


def dashboard_routes(settings: Settings) -> list[BaseRoute]:
    """The page, its assets and its data, for the operator's router (`lastro.http.operator_routes`)."""
    access = OperatorAccess.metrics(settings, "the dashboard's data")  # the readers of /metrics
    files = resources.files("lastro.observability") / "dashboard"
    page = (files / "index.html").read_bytes()
    assets = {name: (files / name).read_bytes() for name in ASSET_TYPES}
    tags = {name: f'"{hashlib.sha256(body).hexdigest()[:16]}"' for name, body in assets.items()}
    histories: dict[str, ReadingHistory] = {}  # the metrics open at start-up: one history, made at first read

    async def dashboard_page(request: Request) -> Response:
        headers = {"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"}
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    async def dashboard_asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in assets:
            return ProblemResponse(404, f"no dashboard asset named {name!r}")
        headers = {"ETag": tags[name], "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == tags[name]:
            return Response(status_code=304, headers=headers)
        return Response(assets[name], media_type=ASSET_TYPES[name], headers=headers)

    async def dashboard_data(request: Request) -> Response:
        metrics = operator_metrics(request, access)
        if isinstance(metrics, Response):
            return metrics
        history = histories.setdefault(str(metrics.directory), ReadingHistory(metrics.directory))
        document = {"service": _service(settings), **dashboard_document(metrics, history)}
        return JSONResponse(document, headers={"Cache-Control": "no-store"})

    return [
        Route(DASHBOARD_PATH, dashboard_page, methods=["GET"]),
        Route(DASHBOARD_ASSETS_PREFIX + "{name}", dashboard_asset, methods=["GET"]),
        Route(DASHBOARD_DATA_PATH, dashboard_data, methods=["GET"]),
    ]


def dashboard_document(metrics: Metrics, history: ReadingHistory, now: float | None = None) -> dict[str, Any]:
    """What `/admin/dashboard.json` answers, but `service`: every figure of the whole service at `now`
    (wall time; the present by default)."""
    families = metrics.families()
    now = time.time() if now is None else now
    reading = Reading.of(families, now)
    baseline = history.exchange(reading, metrics.started_at)
    report = worker_report(metrics, families)
    return {
        "at": round(now, 3),
        "since": round(metrics.started_at, 3),
        **window_figures(reading, baseline, metrics.started_at),
        "totals": {
            "requests": int(reading.requests),
            "status_counts": {kind: int(count) for kind, count in reading.statuses.items()},
        },
        "workers": report["workers"],
        "worker_totals": report["totals"],
        "pool": _pool(families),
        "jobs": _jobs(families),
        "slowest": _slowest(metrics, now),
    }


def _service(settings: Settings) -> dict[str, str]:
    return {
        "name": settings.SERVICE_NAME,
        "version": settings.SERVICE_VERSION,
        "environment": settings.ENVIRONMENT,
    }


def _values(families: list[Metric], name: str, label: str = "") -> dict[str, float]:
    """The samples named `name`, by the value of `label` ("" for a series without labels)."""
    return {
        sample.labels.get(label, ""): sample.value
        for family in families
        for sample in family.samples
        if sample.name == name
    }


def _pool(families: list[Metric]) -> dict[str, int] | None:
    size = int(_values(families, "lastro_db_pool_size").get("", 0))
    if not size:  # no pooled connections (no database open yet, or an engine without a pool)
        return None
    return {
        "in_use": int(_values(families, "lastro_db_pool_in_use").get("", 0)),
        "idle": int(_values(families, "lastro_db_pool_idle").get("", 0)),
        "size": size,
    }


def _jobs(families: list[Metric]) -> list[dict[str, Any]]:
    in_a_row = _values(families, "lastro_job_consecutive_failures", "job_name")
    degraded = _values(families, "lastro_job_degraded", "job_name")
    failed = {
        sample.labels["job_name"]: sample.value
        for family in families
        for sample in family.samples
        if sample.name == "lastro_job_runs_total" and sample.labels.get("outcome") == "failure"
    }
    return [
        {
            "name": name,
            "failures": int(failed.get(name, 0)),
            "consecutive_failures": int(in_a_row.get(name, 0)),
            "degraded": bool(degraded.get(name, 0)),
        }
        for name in sorted(set(in_a_row) | set(failed))
    ]


def _slowest(metrics: Metrics, now: float) -> list[dict[str, Any]]:
    record = metrics.slowest
    if record is None:
        return []
    found = record.recent()  # this worker's, fresh; the others' as their monitor last wrote them
    if metrics.directory is not None:
        found += read_published(metrics.directory, os.getpid(), psutil.pid_exists)
    recent = [request for request in found if request.get("at", 0) >= now - record.window]
    return sorted(recent, key=lambda request: request.get("duration_ms", 0), reverse=True)[:SLOWEST_KEPT]
