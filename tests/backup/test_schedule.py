"""BACKUP_EVERY: the periodic job `lastro-backup` backs up once per slot across every worker, and a backup
that fails is a job failure shown in /health."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from pathlib import Path

import httpx
import pytest

from lastro import create_app
from lastro.errors import StartupError
from lastro.settings import get_settings
from tests.support.lifespan import running
from tests.support.process import wait_for
from tests.support.servers import serve


def runs(database: Path) -> list[tuple[float, str]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT slot, outcome FROM lastro_job_runs WHERE job = 'lastro-backup' ORDER BY slot"
        ).fetchall()


def test_the_scheduled_backup_runs_once_per_slot_across_three_workers(tmp_path: Path) -> None:
    """Three workers, a backup every second: each slot is run by one worker only, and there are exactly as
    many backups as successful runs."""
    backups = tmp_path / "backups"
    with serve(
        tmp_path, WORKERS="3", BACKUP_EVERY="1", BACKUP_DIR=str(backups), BACKUP_KEEP="1000"
    ) as server:
        database = tmp_path / "service.db"
        wait_for(lambda: sum(outcome == "ok" for _, outcome in runs(database)) >= 3, timeout=30)
        jobs = httpx.get(f"{server.url}/health", timeout=10).json()["checks"]["periodic_jobs"]["jobs"]
        assert "lastro-backup" in jobs
    found = runs(database)
    slots = Counter(slot for slot, outcome in found if outcome in ("ok", "running"))
    assert max(slots.values()) == 1
    made = [path for path in backups.iterdir() if path.name.startswith("lastro-backup-")]
    assert len(made) == sum(outcome == "ok" for _, outcome in found)


@pytest.mark.anyio
async def test_a_backup_that_fails_is_a_job_failure_in_health(tmp_path: Path) -> None:
    """BACKUP_DIR that cannot be created (a file stands in its way): the run is recorded as an error naming
    BACKUP_DIR, and /health's periodic_jobs shows the failure."""
    (tmp_path / "blocker").write_text("a file, not a directory")
    settings = get_settings(
        DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
        BACKUP_EVERY=1,
        BACKUP_DIR=tmp_path / "blocker" / "backups",
        LOG_FORMAT="json",
    )
    app = create_app(settings)
    async with (
        running(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client,
    ):

        async def failed() -> dict[str, object] | None:
            job = (await client.get("/health")).json()["checks"]["periodic_jobs"]["jobs"]["lastro-backup"]
            return job if job["failures_in_a_row"] >= 1 else None

        job = None
        for _ in range(200):
            job = await failed()
            if job:
                break
            await asyncio.sleep(0.05)  # polling the condition, bounded by the loop
    assert job is not None
    assert "cannot write into BACKUP_DIR" in str(job["last_error"])


@pytest.mark.anyio
async def test_a_cron_the_schedule_cannot_read_stops_start_up_naming_backup_cron(tmp_path: Path) -> None:
    """BACKUP_CRON with five fields but a minute of 99 fails start-up with a message naming the setting."""
    settings = get_settings(DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}", BACKUP_CRON="99 3 * * *")
    with pytest.raises(StartupError, match=r"^BACKUP_CRON='99 3 \* \* \*' cannot be read: cron minute '99'"):
        async with running(create_app(settings)):
            pass
