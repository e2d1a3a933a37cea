"""Schema migrations with Alembic, run by `lastro db upgrade` and checked at start-up.

An application keeps an ordinary Alembic scripts directory whose `env.py` calls `run_migrations`:

```python
from alembic import context
from lastro.db.migrations import run_migrations
from myapp.schema import metadata

run_migrations(context, metadata)
```

`upgrade()` is idempotent, and safe when several hosts run it at once: SQLite serialises it with
`BEGIN IMMEDIATE`, PostgreSQL with an advisory lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, text

from lastro.db.engine import Database
from lastro.db.sqlite import BEGIN_OPTION
from lastro.errors import ConfigurationError

__all__ = ["current_revision", "head_revision", "run_migrations", "upgrade"]

_ADVISORY_LOCK_KEY = 7_461_620_000_000_001  # any constant shared by every lastro upgrader


def _config(directory: Path, connection: Connection | None = None) -> Config:
    if not (directory / "env.py").is_file():
        raise ConfigurationError(
            f"MIGRATIONS_DIR must be an Alembic scripts directory with an env.py (got {str(directory)!r})"
        )
    config = Config()
    config.set_main_option("script_location", str(directory))
    config.attributes["connection"] = connection
    return config


def head_revision(directory: Path) -> str | None:
    return ScriptDirectory.from_config(_config(directory)).get_current_head()


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(database: Database, directory: Path, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply the migrations up to `revision`; return the revisions before and after."""
    with database.engine.connect() as connection:
        if database.is_sqlite:
            connection.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        with connection.begin():
            if not database.is_sqlite:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            before = MigrationContext.configure(connection).get_current_revision()
            command.upgrade(_config(directory, connection), revision)
            after = MigrationContext.configure(connection).get_current_revision()
    return before, after


def run_migrations(context: Any, target_metadata: MetaData) -> None:
    """The body of an Alembic `env.py`: migrate on the connection lastro hands over."""
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise ConfigurationError("run migrations with `lastro db upgrade`, not the alembic command")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    )
    with context.begin_transaction():
        context.run_migrations()
