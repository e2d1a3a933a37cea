"""`lastro db`: the application's schema migrations (Alembic)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lastro.cli.common import EXIT_CONFIG, EXIT_STARTUP, app_settings, database_or_fail, fail
from lastro.errors import ConfigurationError, one_line
from lastro.settings import Settings

if TYPE_CHECKING:
    from lastro.db.engine import Database

__all__ = ["db"]


@click.group()
def db() -> None:
    """Database schema migrations (Alembic)."""


def db_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--migrations and --app-dir: where the scripts are, and where the modules their env.py imports are."""
    command = click.option(
        "--app-dir",
        default=".",
        show_default=True,
        type=click.Path(file_okay=False),
        help="Directory added to the import path before env.py imports the application's metadata.",
    )(command)
    return click.option(
        "--migrations",
        "migrations_dir",
        default=None,
        show_default="$MIGRATIONS_DIR or ./migrations",
        type=click.Path(file_okay=False),
        help="Alembic scripts directory of the application.",
    )(command)


@db.command()
@db_options
@click.option("--revision", default="head", show_default=True, help="Revision to upgrade to.")
def upgrade(migrations_dir: str | None, app_dir: str, revision: str) -> None:
    """Apply the migrations to DATABASE_URL; running it again changes nothing."""
    from lastro.db import migrations

    url, before, after = _migrate(migrations.upgrade, "migrating", migrations_dir, app_dir, revision)
    state = "already at" if before == after else f"upgraded from {before or 'an empty schema'} to"
    click.echo(f"{url}: {state} revision {after}")


# `-1` is a revision, not an unknown option.
@db.command(context_settings={"ignore_unknown_options": True})
@db_options
@click.argument("revision")
def downgrade(migrations_dir: str | None, app_dir: str, revision: str) -> None:
    """Undo migrations on DATABASE_URL down to REVISION: an id, -N (N steps back) or base.

    Data in the columns and tables a downgrade drops is lost: take a backup first.
    """
    from lastro.db import migrations

    url, before, after = _migrate(migrations.downgrade, "downgrading", migrations_dir, app_dir, revision)
    state = "already at" if before == after else f"downgraded from {before or 'an empty schema'} to"
    click.echo(f"{url}: {state} revision {after or 'none (an empty schema)'}")


@db.command()
@db_options
def current(migrations_dir: str | None, app_dir: str) -> None:
    """Show the schema revision of DATABASE_URL and the newest one available."""
    from lastro.db import migrations

    settings, directory = _db_context(migrations_dir, app_dir)
    database = database_or_fail(settings)
    try:
        found, head = migrations.current_revision(database), migrations.head_revision(directory)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    except Exception as exc:
        fail(f"reading {database.display_url} failed: {one_line(exc)}", EXIT_STARTUP)
    finally:
        database.dispose()
    click.echo(f"{database.display_url}: revision {found or 'none'} (newest available: {head})")


@db.command()
@db_options
@click.option("-m", "--message", required=True, help="What the revision changes, e.g. 'add notes'.")
@click.option(
    "--autogenerate",
    is_flag=True,
    default=False,
    help="Write the operations that bring DATABASE_URL's schema to env.py's metadata.",
)
def revision(migrations_dir: str | None, app_dir: str, message: str, autogenerate: bool) -> None:
    """Write a new migration script; DATABASE_URL must be at the newest revision for --autogenerate."""
    from alembic.util import CommandError

    from lastro.db import migrations

    settings, directory = _db_context(migrations_dir, app_dir)
    database = database_or_fail(settings) if autogenerate else None
    try:
        paths = migrations.revision(directory, message, database)
    except (ConfigurationError, CommandError) as exc:
        fail(one_line(exc), EXIT_CONFIG)
    except Exception as exc:
        fail(f"writing the revision failed: {one_line(exc)}", EXIT_STARTUP)
    finally:
        if database is not None:
            database.dispose()
    for path in paths:
        click.echo(f"created {path}")


def _db_context(migrations_dir: str | None, app_dir: str) -> tuple[Settings, Path]:
    """The settings and the scripts directory, with `app_dir` on the import path as `serve` puts it."""
    # Migrations serve nothing and sign nothing: a release step may run them without SECRET_KEY.
    settings = app_settings(app_dir)
    return settings, Path(migrations_dir) if migrations_dir else settings.MIGRATIONS_DIR


Step = Callable[["Database", Path, str], tuple[str | None, str | None]]


def _migrate(
    step: Step, doing: str, migrations_dir: str | None, app_dir: str, revision: str
) -> tuple[str, str | None, str | None]:
    """Run `step` (upgrade or downgrade) to `revision`: the database's shown URL and its revisions before and
    after; every failure one `Error:` line."""
    settings, directory = _db_context(migrations_dir, app_dir)
    database = database_or_fail(settings)
    try:
        before, after = step(database, directory, revision)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    except Exception as exc:
        fail(f"{doing} {database.display_url} failed: {one_line(exc)}", EXIT_STARTUP)
    finally:
        database.dispose()
    return database.display_url, before, after
