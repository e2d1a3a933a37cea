"""The units of work that record periodic jobs: their runs (`lastro_job_runs`) and status (`lastro_jobs`).

`claim` is the exactly-once guard: it inserts a slot's run row with `ON CONFLICT DO NOTHING`, and only the
worker whose insert went in runs the slot. Times are stored as Unix time and shown as ISO 8601 in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from lastro.coordination.tables import job_runs, jobs

__all__ = ["End", "Run", "claim", "finish", "recent_runs", "status_document", "statuses"]


@dataclass(frozen=True)
class Run:
    job: str
    slot: float
    attempt: int
    started_at: float
    host: str
    pid: int


@dataclass(frozen=True)
class End:
    run_id: int
    job: str
    outcome: str  # ok, error, cancelled
    error: str | None
    ended_at: float
    next_run: float
    retention: float


def _insert(connection: Connection) -> Any:
    return sqlite.insert if connection.dialect.name == "sqlite" else postgresql.insert


def claim(connection: Connection, run: Run, next_run: float) -> int | None:
    """Insert the run's row, `running`; its id, or None when this slot's attempt was claimed already."""
    insert = _insert(connection)
    statement = (
        insert(job_runs)
        .values(
            job=run.job,
            slot=run.slot,
            attempt=run.attempt,
            started_at=run.started_at,
            outcome="running",
            host=run.host,
            pid=run.pid,
        )
        .on_conflict_do_nothing(index_elements=[job_runs.c.job, job_runs.c.slot, job_runs.c.attempt])
        .returning(job_runs.c.id)
    )
    run_id: int | None = connection.execute(statement).scalar_one_or_none()
    if run_id is None:
        return None
    started = {"last_start": run.started_at, "next_run": next_run, "host": run.host, "pid": run.pid}
    connection.execute(
        insert(jobs)
        .values(name=run.job, failures=0, **started)
        .on_conflict_do_update(index_elements=[jobs.c.name], set_=started)
    )
    return run_id


def finish(connection: Connection, end: End) -> int:
    """Record how the run ended, update the job's status and prune old runs; the failures in a row."""
    connection.execute(
        update(job_runs)
        .where(job_runs.c.id == end.run_id)
        .values(
            outcome=end.outcome,
            error=end.error,
            duration_ms=(end.ended_at - job_runs.c.started_at) * 1000.0,
        )
    )
    changes: dict[str, Any] = {"next_run": end.next_run}
    if end.outcome == "ok":
        changes |= {"failures": 0, "last_success": end.ended_at}
    elif end.outcome == "error":
        changes |= {"failures": jobs.c.failures + 1, "last_error": end.error, "last_error_at": end.ended_at}
    failures = connection.execute(
        update(jobs).where(jobs.c.name == end.job).values(**changes).returning(jobs.c.failures)
    ).scalar_one_or_none()
    connection.execute(delete(job_runs).where(job_runs.c.started_at < end.ended_at - end.retention))
    return int(failures or 0)


def statuses(connection: Connection, names: list[str]) -> dict[str, Mapping[str, Any]]:
    rows = connection.execute(select(jobs).where(jobs.c.name.in_(names))).mappings()
    return {row["name"]: dict(row) for row in rows}


def status_document(
    row: Mapping[str, Any] | None, degraded_after: int, next_run: float | None = None
) -> dict[str, Any]:
    """A job's status for /health and the admin: `degraded` after `degraded_after` failures in a row.

    Before its first run anywhere, `next_run` (when the schedule will first call it) is the one thing known.
    """
    if row is None:
        return {"state": "waiting", "failures_in_a_row": 0, "next_run": _iso(next_run)}
    failures = int(row["failures"])
    return {
        "state": "degraded" if failures >= degraded_after else "ok",
        "failures_in_a_row": failures,
        "last_start": _iso(row["last_start"]),
        "last_success": _iso(row["last_success"]),
        "last_error": row["last_error"],
        "last_error_at": _iso(row["last_error_at"]),
        "next_run": _iso(row["next_run"]),
        "host": row["host"],
        "pid": row["pid"],
    }


def recent_runs(connection: Connection, limit: int) -> list[dict[str, Any]]:
    """The latest `limit` runs of every job, newest first."""
    statement = select(job_runs).order_by(job_runs.c.started_at.desc(), job_runs.c.id.desc()).limit(limit)
    return [
        {
            "job": row["job"],
            "slot": _iso(row["slot"]),
            "attempt": row["attempt"],
            "started_at": _iso(row["started_at"]),
            "duration_ms": None if row["duration_ms"] is None else round(row["duration_ms"], 3),
            "outcome": row["outcome"],
            "error": row["error"],
            "host": row["host"],
            "pid": row["pid"],
        }
        for row in connection.execute(statement).mappings()
    ]


def _iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat()
