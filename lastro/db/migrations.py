"""Schema migrations with Alembic, run by `lastro db upgrade` and checked at start-up.

An application keeps an ordinary Alembic scripts directory whose `env.py` calls `run_migrations`:

```python
from alembic import context
from lastro.db.migrations import run_migrations
from myapp.schema import metadata

run_migrations(context, metadata)
```

`downgrade()` undoes them down to a revision (an id, `-N` steps, or `base`), for a rollback.

`upgrade()` is idempotent, and safe when several hosts run it at once: SQLite serialises it with
`BEGIN IMMEDIATE`, PostgreSQL with an advisory lock. `schema_problem()` is the start-up check: a database
behind the code's migrations is refused with the command that fixes it.

Alembic is imported only by the functions that need it: it makes every process that imports it larger
(benchmarks/RESULTS.md, "What moved the numbers"), and a worker of `lastro serve` never needs it, since the
supervisor checks the schema once for all of them (`lastro.serve.preflight`).
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, MetaData, text

from lastro.db.engine import Database
from lastro.db.sqlite import BEGIN_OPTION
from lastro.errors import ConfigurationError, one_line

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "current_revision",
    "downgrade",
    "head_revision",
    "is_scripts_directory",
    "revision",
    "run_migrations",
    "schema_problem",
    "upgrade",
]

LASTRO_TABLE_PREFIX = "lastro_"  # lastro.coordination.tables: not the application's to migrate
_ADVISORY_LOCK_KEY = 7_461_620_000_000_001  # any constant shared by every lastro upgrader


def is_scripts_directory(directory: Path) -> bool:
    return (directory / "env.py").is_file()


def _config(directory: Path, connection: Connection | None = None) -> Config:
    from alembic.config import Config

    if not is_scripts_directory(directory):
        raise ConfigurationError(
            f"MIGRATIONS_DIR must be an Alembic scripts directory with an env.py (got {str(directory)!r})"
        )
    config = Config(cmd_opts=Namespace(quiet=True))  # lastro's command says what it did, once
    config.set_main_option("script_location", str(directory))
    config.attributes["connection"] = connection
    return config


def head_revision(directory: Path) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(directory)).get_current_head()


def current_revision(database: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema_problem(database: Database, directory: Path) -> str | None:
    """None when the database is at the head of `directory`'s migrations, else what to run, in one line."""
    try:
        found = current_revision(database)
        wanted = head_revision(directory)
    except Exception as exc:  # the database did not answer, or the scripts do not load
        return f"could not read the schema revision (MIGRATIONS_DIR={directory}): {one_line(exc)}"
    if found == wanted:
        return None
    return (
        f"the database schema is at revision {found or 'none'}, the code needs {wanted} "
        f"(MIGRATIONS_DIR={directory}): run `lastro db upgrade --migrations {directory}`"
    )


def upgrade(database: Database, directory: Path, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply the migrations up to `revision`; return the revisions before and after."""
    from alembic import command

    return _migrate(database, directory, lambda config: command.upgrade(config, revision))


def downgrade(database: Database, directory: Path, revision: str) -> tuple[str | None, str | None]:
    """Undo the migrations down to `revision`: an id, `-N` (N steps back) or `base` (an empty schema);
    return the revisions before and after.

    Raises `ConfigurationError` for a revision that is not older than the current one or not in
    `directory`; the scripts' own failures propagate.
    """
    from alembic import command
    from alembic.util import CommandError

    target = revision.strip()
    if not target or "+" in target or target in ("head", "heads"):
        raise ConfigurationError(
            f"a downgrade goes back: give a revision id, -N (N steps back) or base (got {revision!r})"
        )
    try:
        return _migrate(database, directory, lambda config: command.downgrade(config, target))
    except CommandError as exc:  # an unknown revision, or one that is not below the current one
        raise ConfigurationError(
            f"cannot downgrade to {revision!r} (MIGRATIONS_DIR={directory}): {one_line(exc)}"
        ) from None


def _migrate(
    database: Database, directory: Path, run: Callable[[Config], object]
) -> tuple[str | None, str | None]:
    """Run one Alembic command on a connection that holds the migration lock; the revisions before and
    after it."""
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as connection:
        if database.is_sqlite:
            connection.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        with connection.begin():
            if not database.is_sqlite:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            before = MigrationContext.configure(connection).get_current_revision()
            run(_config(directory, connection))
            after = MigrationContext.configure(connection).get_current_revision()
    return before, after


def revision(directory: Path, message: str, database: Database | None = None) -> list[Path]:
    """Write a new revision script in `directory` and return its path. With `database`, autogenerate its
    operations: what turns that database's schema into the metadata `env.py` passes to `run_migrations`."""
    from alembic import command
    from alembic.script import Script

    if database is None:
        written = command.revision(_config(directory), message)
    else:
        found, head = current_revision(database), head_revision(directory)
        if found != head:  # a diff against an old schema would repeat migrations already written
            raise ConfigurationError(
                f"autogenerate compares the metadata with a database at the newest revision; "
                f"{database.display_url} is at {found or 'none'}, the newest is {head}: "
                f"run `lastro db upgrade --migrations {directory}` first"
            )
        with database.engine.connect() as connection:
            written = command.revision(_config(directory, connection), message, autogenerate=True)
    scripts = written if isinstance(written, list) else [written]
    return [Path(script.path) for script in scripts if isinstance(script, Script)]


def _not_lastros(name: str | None, type_: str, parent_names: Any) -> bool:
    """Autogenerate leaves lastro's own tables (`lastro_*`, created at start-up) alone."""
    return not (type_ == "table" and name is not None and name.startswith(LASTRO_TABLE_PREFIX))


def run_migrations(context: Any, target_metadata: MetaData) -> None:
    """The body of an Alembic `env.py`: migrate on the connection lastro hands over."""
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise ConfigurationError("run migrations with `lastro db upgrade`, not the alembic command")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        include_name=_not_lastros,
    )
    with context.begin_transaction():
        context.run_migrations()
