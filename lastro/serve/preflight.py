"""Checks the supervisor runs before it starts any worker, so a broken setup fails once, clearly.

- `check_database`: the database at `DATABASE_URL` answers.
- `check_schema`: the database is at the head of the migrations in `MIGRATIONS_DIR` (when that is an
  Alembic scripts directory). On success it sets `LASTRO_SCHEMA_CHECKED`, so the workers, which inherit the
  environment, skip the check: a worker never imports Alembic. A failed check leaves it as it was: the
  workers already serving were checked against their own code. Where the workers are forked (Linux,
  `WORKER_START_METHOD=auto`) the check itself runs in a short-lived forked child, so the supervisor,
  which the workers are forked from, never imports it either.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from lastro.db import migrations
from lastro.db.engine import Database
from lastro.errors import one_line
from lastro.serve.supervisor import forks_workers
from lastro.settings import Settings
from lastro.workers import SCHEMA_CHECKED_ENV

__all__ = ["check_database", "check_schema"]


def check_database(settings: Settings) -> str | None:
    """None when the database answers, else one line naming `DATABASE_URL` and the reason."""
    try:
        database = Database(settings.DATABASE_URL)
    except Exception as exc:
        return f"DATABASE_URL is not usable: {exc}"
    try:
        database.ping()
    except Exception as exc:
        return f"the database at DATABASE_URL={database.display_url} did not answer: {one_line(exc)}"
    finally:
        database.dispose()
    return None


def check_schema(settings: Settings) -> str | None:
    """None when the schema is at the head of `MIGRATIONS_DIR` (or there are no migrations), else one line."""
    directory = settings.MIGRATIONS_DIR
    if not migrations.is_scripts_directory(directory):
        return None
    fork = forks_workers(settings.WORKER_START_METHOD)
    problem = _isolated(_schema_problem, settings.DATABASE_URL, directory, fork=fork)
    if problem is None:
        os.environ[SCHEMA_CHECKED_ENV] = str(directory.resolve())
    return problem


def _schema_problem(url: str, directory: Path) -> str | None:
    database = Database(url)
    try:
        return migrations.schema_problem(database, directory)
    finally:
        database.dispose()


def _isolated(
    check: Callable[[str, Path], str | None], url: str, directory: Path, *, fork: bool
) -> str | None:
    if not fork:
        return check(url, directory)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_send_result, args=(sender, check, url, directory), daemon=True)
    child.start()
    sender.close()
    answered = True
    try:
        result: str | None = receiver.recv()
    except EOFError:
        answered, result = False, None
    finally:
        receiver.close()
        child.join()
    if not answered:
        return f"the schema check (MIGRATIONS_DIR={directory}) stopped with exit code {child.exitcode}"
    return result


def _send_result(
    sender: Connection, check: Callable[[str, Path], str | None], url: str, directory: Path
) -> None:
    sender.send(check(url, directory))
    sender.close()
