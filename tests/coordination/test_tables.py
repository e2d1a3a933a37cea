"""`ensure_tables` at start-up: a short DB_STATEMENT_TIMEOUT, meant for requests, does not fail it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import inspect

from lastro.coordination import tables
from lastro.db.engine import Database, DatabaseOptions
from tests.support.databases import conninfo, postgres_url_for, scratch_database

pytestmark = pytest.mark.postgres

TIMEOUT = 0.5  # seconds: long enough for connecting on a busy machine, shorter than the wait below
WAIT = 1.5  # seconds another worker holds the tables' lock


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    """The name of a new PostgreSQL database without lastro's tables; dropped afterwards."""
    with scratch_database("lastro_tables") as name:
        yield name


def wait_behind_lock(holder: psycopg.Connection, done: threading.Event) -> None:
    """Return once the worker has waited WAIT for the tables' lock, or has stopped waiting."""
    waiting = (
        "SELECT now() - query_start > make_interval(secs => %s) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    while not done.is_set():
        row = holder.execute(waiting, (WAIT,)).fetchone()
        if row is not None and row[0]:
            return
        done.wait(0.02)


def test_tables_are_created_behind_another_worker_past_the_statement_timeout(empty_postgres: str) -> None:
    """A worker that waits past DB_STATEMENT_TIMEOUT for another's table creation still creates them."""
    database = Database(postgres_url_for(empty_postgres), DatabaseOptions(statement_timeout=TIMEOUT))
    failures: list[BaseException] = []
    done = threading.Event()

    def start() -> None:
        try:
            tables.ensure_tables(database)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
        finally:
            done.set()

    with psycopg.connect(conninfo(empty_postgres), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (tables._ADVISORY_LOCK_KEY,))
        worker = threading.Thread(target=start)
        worker.start()
        wait_behind_lock(holder, done)
        holder.execute("SELECT pg_advisory_unlock(%s)", (tables._ADVISORY_LOCK_KEY,))
        worker.join()
    try:
        assert failures == []
        with database.engine.connect() as connection:
            assert "lastro_events" in inspect(connection).get_table_names()
    finally:
        database.dispose()
