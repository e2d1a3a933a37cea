"""`GET /api/admin/jobs`: the periodic jobs' recent runs, newest first, and each job's status; admins only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

import lastro
from examples.orders.auth import Admin

__all__ = ["MAX_RUNS", "router"]

MAX_RUNS = 500
DEFAULT_RUNS = 50

router = APIRouter(prefix="/api/admin/jobs", tags=["admin"])


class JobRun(BaseModel):
    job: str
    started_at: datetime
    duration_ms: float | None  # None while running, or when the worker died during the run
    outcome: str  # running, ok, error, cancelled
    host: str
    pid: int
    attempt: int
    error: str | None


class JobRuns(BaseModel):
    items: list[JobRun]
    jobs: dict[str, dict[str, Any]]  # each job's status: last start, success and error, next run, host, pid


@router.get("", responses=lastro.problems(401, 403, 422))
async def list_job_runs(
    request: Request, _: Admin, limit: Annotated[int, Query(ge=1, le=MAX_RUNS)] = DEFAULT_RUNS
) -> JobRuns:
    state: lastro.ServiceState = request.app.state.lastro
    runs = await state.jobs.recent_runs(limit)
    return JobRuns(items=[JobRun.model_validate(run) for run in runs], jobs=await state.jobs.statuses())
