"""The scheduled backup: `BACKUP_EVERY` or `BACKUP_CRON` make start-up add the periodic job `lastro-backup`.

It runs on the coordination jobs (`lastro.coordination.jobs`), so one worker of all machines sharing the
database runs each slot; the backup and then the retention run in a thread, off the event loop. A failure
is the job's failure: retried with backoff, counted, and shown in `/health` under `periodic_jobs`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread

from lastro.backup.make import create_backup
from lastro.backup.retention import prune
from lastro.errors import ConfigurationError, StartupError
from lastro.observability.logging import get_logger
from lastro.settings import Settings

__all__ = ["JOB_NAME", "schedule_backups", "scheduled_backup"]

JOB_NAME = "lastro-backup"
logger = get_logger("lastro.backup")


def scheduled_backup(settings: Settings) -> Callable[[], Awaitable[None]]:
    """The job's function: one backup into `BACKUP_DIR`, then the retention of `BACKUP_DIR`."""

    def run() -> None:
        result = create_backup(settings)
        logger.info(
            "backup made",
            path=str(result.path),
            bytes=result.size,
            seconds=round(result.seconds, 3),
            schema_revision=result.manifest.schema_revision,
        )
        removed = prune(settings.BACKUP_DIR, settings.BACKUP_KEEP, settings.BACKUP_MAX_AGE_DAYS)
        if removed:
            logger.info("backups removed by retention", paths=[str(path) for path in removed])

    async def job() -> None:
        await anyio.to_thread.run_sync(run)

    return job


def schedule_backups(settings: Settings, add: Callable[..., Any]) -> None:
    """Add the job with `add` (`state.jobs.add`) when BACKUP_EVERY or BACKUP_CRON asks for a schedule."""
    if settings.BACKUP_EVERY is None and settings.BACKUP_CRON is None:
        return
    if settings.BACKUP_EVERY is not None and settings.BACKUP_CRON is not None:
        raise StartupError("BACKUP_EVERY and BACKUP_CRON are both set: a backup schedule is one or the other")
    try:
        add(JOB_NAME, scheduled_backup(settings), every=settings.BACKUP_EVERY, cron=settings.BACKUP_CRON)
    except ConfigurationError as exc:
        raise StartupError(f"BACKUP_CRON={settings.BACKUP_CRON!r} cannot be read: {exc}") from None
