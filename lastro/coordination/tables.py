"""lastro's own tables, in the service's database beside the application's.

They are created at start-up when missing (`ensure_tables`), under the same lock as `lastro db upgrade`, so
an application's migrations never carry them: `run_migrations` leaves every `lastro_*` table out of
autogenerate.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from lastro.db.engine import Database
from lastro.db.migrations import LASTRO_TABLE_PREFIX
from lastro.db.sqlite import BEGIN_OPTION

__all__ = ["PREFIX", "ensure_tables", "events", "job_runs", "jobs", "leases", "metadata"]

PREFIX = LASTRO_TABLE_PREFIX
_ADVISORY_LOCK_KEY = 7_461_620_000_000_002  # lastro's tables, apart from the migrations' lock
STARTUP_STATEMENT_TIMEOUT = 30  # seconds, for creating lastro's tables whatever DB_STATEMENT_TIMEOUT says

# BigInteger ids that are still SQLite's rowid (an INTEGER PRIMARY KEY) there.
_Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

leases = Table(
    "lastro_leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),  # Unix time
)

events = Table(
    "lastro_events",
    metadata,
    # AUTOINCREMENT on SQLite: an id is never reused, even after the newest events are trimmed.
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("channel", String(200), nullable=False),
    Column("data", Text, nullable=False),  # a JSON object
    Column("at", Float, nullable=False),  # Unix time
    Index("lastro_events_channel_id", "channel", "id"),
    Index("lastro_events_at", "at"),
    sqlite_autoincrement=True,
)

jobs = Table(
    "lastro_jobs",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("failures", Integer, nullable=False, server_default=text("0")),  # in a row
    Column("last_start", Float),
    Column("last_success", Float),
    Column("last_error", Text),
    Column("last_error_at", Float),
    Column("next_run", Float),
    Column("host", String(255)),
    Column("pid", Integer),
)

job_runs = Table(
    "lastro_job_runs",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("job", String(200), nullable=False),
    Column("slot", Float, nullable=False),  # the scheduled time this run is for: one run per slot
    Column("attempt", Integer, nullable=False, server_default=text("1")),
    Column("started_at", Float, nullable=False),
    Column("duration_ms", Float),
    Column("outcome", String(20), nullable=False),  # running, ok, error, cancelled
    Column("error", Text),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    UniqueConstraint("job", "slot", "attempt", name="lastro_job_runs_once"),
    Index("lastro_job_runs_started", "started_at"),
)


def ensure_tables(database: Database) -> None:
    """Create lastro's tables that are missing; safe when every worker of every machine does it at once."""
    with database.engine.connect() as connection:
        if database.is_sqlite:
            connection.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        with connection.begin():
            if not database.is_sqlite:
                # DB_STATEMENT_TIMEOUT bounds requests' statements; this start-up DDL and its catalog reads
                # would fail a start on a busy server under a short one.
                connection.execute(text(f"SET LOCAL statement_timeout = '{STARTUP_STATEMENT_TIMEOUT}s'"))
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            _create(connection)


def _create(connection: Connection) -> None:
    metadata.create_all(connection, checkfirst=True)
