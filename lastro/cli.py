"""The `lastro` command: a thin layer over the programmatic functions.

Every option of `lastro serve` is also a setting: the option, when given, is exported to the environment
so that the workers, which read their settings on start, see the same values. A user error is one
`Error: ...` line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from lastro._version import __version__
from lastro.errors import ConfigurationError, one_line
from lastro.settings import Settings, get_settings, load_settings

if TYPE_CHECKING:
    from lastro.db.engine import Database

__all__ = ["main"]

# The command could not do its work: a file it would overwrite without --force, a directory it cannot write.
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_STARTUP = 3


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def setting_option(flag: str, name: str, help_text: str, **kwargs: Any) -> Callable[..., Any]:
    """An option that, when given, overrides the setting `name`; its default shows the setting's."""
    field = Settings.model_fields[name]
    default = field.default if field.default is not None else "unset"
    return click.option(
        flag,
        name,
        default=None,
        show_default=f"${name} or {default}",
        help=help_text,
        **kwargs,
    )


@click.group()
@click.version_option(__version__, prog_name="lastro")
def main() -> None:
    """lastro: run a FastAPI app as a production service."""


@main.command()
@click.argument("target")
@click.option("--factory", is_flag=True, default=False, show_default=True, help="TARGET is an app factory.")
@click.option(
    "--app-dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory added to the import path before TARGET is imported.",
)
@setting_option("--workers", "WORKERS", "Worker processes: a number or 'auto'.")
@setting_option("--bind", "BIND", "HOST:PORT to listen on.")
@setting_option(
    "--environment",
    "ENVIRONMENT",
    "production (refuses unsafe settings, logs JSON, hides /docs) or development (your own machine).",
)
@setting_option("--log-level", "LOG_LEVEL", "CRITICAL, ERROR, WARNING, INFO or DEBUG.")
@setting_option("--log-format", "LOG_FORMAT", "json or console (console in development, else json).")
@setting_option("--timeout", "TIMEOUT", "Seconds a silent worker is given before it is replaced.")
@setting_option("--keepalive", "KEEPALIVE", "Seconds an idle keep-alive connection stays open.")
@setting_option("--graceful-timeout", "GRACEFUL_TIMEOUT", "Seconds to finish in-flight requests on stop.")
@setting_option("--max-requests", "MAX_REQUESTS", "Recycle a worker after this many requests (0: never).")
@setting_option("--max-requests-jitter", "MAX_REQUESTS_JITTER", "Random extra requests before recycling.")
@setting_option("--max-in-flight", "MAX_IN_FLIGHT", "Requests in flight per worker before 503 (0: no cap).")
def serve(target: str, factory: bool, app_dir: str, **overrides: str | None) -> None:
    """Serve TARGET (MODULE:APP) with N worker processes."""
    from lastro.db.sqlite import check_pragmas, pragmas_for
    from lastro.db.urls import check_database_url
    from lastro.observability.tracing import check_tracing
    from lastro.serve import ServeConfig, run
    from lastro.serve.preflight import check_database, check_schema
    from lastro.serve.target import target_problem
    from lastro.workers import resolve_workers

    sys.path.insert(0, os.path.abspath(app_dir))
    mistake = target_problem(target, app_dir)
    if mistake is not None:
        fail(mistake, EXIT_CONFIG)
    for name, value in overrides.items():
        if value is not None:
            os.environ[name] = value
    try:
        settings = get_settings()
        check_database_url(settings.DATABASE_URL)
        check_pragmas(pragmas_for(settings))  # here, once, rather than in every worker
        check_tracing(settings)  # a missing extra: one line here, not a traceback from every worker
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    if settings.SECRET_KEY is None:
        # Development only (production refuses a missing key): one random key shared by every worker,
        # so that what one worker signs the others accept.
        os.environ["SECRET_KEY"] = secrets.token_urlsafe(48)
    problem = check_database(settings) or check_schema(settings)
    if problem is not None:
        fail(problem, EXIT_STARTUP)
    workers = resolve_workers(settings.WORKERS, settings.DATABASE_URL)
    sys.exit(run(ServeConfig(target=target, settings=settings, workers=workers, factory=factory)))


@main.group()
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

    settings, directory = _db_context(migrations_dir, app_dir)
    database = _database_or_fail(settings)
    try:
        before, after = migrations.upgrade(database, directory, revision)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    except Exception as exc:
        fail(f"migrating {database.display_url} failed: {one_line(exc)}", EXIT_STARTUP)
    finally:
        database.dispose()
    state = "already at" if before == after else f"upgraded from {before or 'an empty schema'} to"
    click.echo(f"{database.display_url}: {state} revision {after}")


@db.command()
@db_options
def current(migrations_dir: str | None, app_dir: str) -> None:
    """Show the schema revision of DATABASE_URL and the newest one available."""
    from lastro.db import migrations

    settings, directory = _db_context(migrations_dir, app_dir)
    database = _database_or_fail(settings)
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
    database = _database_or_fail(settings) if autogenerate else None
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


@main.group()
def deploy() -> None:
    """Files that run the service under other tools."""


@deploy.command()
@click.option(
    "--output",
    default="deploy/prometheus",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory the files are written to; created if missing.",
)
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="HOST:PORT",
    help="Address Prometheus scrapes, once per `lastro serve` instance; default: from BIND.",
)
@click.option("--force", is_flag=True, default=False, help="Overwrite the files if they are there.")
def prometheus(output: str, targets: tuple[str, ...], force: bool) -> None:
    """Write a Prometheus scrape config and alert rules for this service.

    prometheus.yml scrapes /metrics (job SERVICE_NAME, targets from BIND or --target) and loads
    lastro-alerts.yml, the alerts; both say in comments what each part does.
    """
    from lastro.ops.prometheus import SCRAPE_CONFIG, TOKEN_FILE, prometheus_files, write_files

    directory = Path(output)
    try:
        settings = load_settings()  # writes a file for another tool: serves nothing, signs nothing
        files = prometheus_files(settings, targets, config_path=str(directory / SCRAPE_CONFIG))
        paths = write_files(directory, files, force=force)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    except FileExistsError as exc:
        fail(str(exc), EXIT_FAILED)
    except OSError as exc:
        fail(f"writing {directory} failed: {one_line(exc)}", EXIT_FAILED)
    for path in paths:
        click.echo(f"wrote {path}")
    if settings.METRICS_TOKEN is not None:
        click.echo(f"put METRICS_TOKEN in {directory / TOKEN_FILE} (mode 600) before starting Prometheus")
    click.echo(f"run: prometheus --config.file={directory / SCRAPE_CONFIG}")


def _db_context(migrations_dir: str | None, app_dir: str) -> tuple[Settings, Path]:
    """The settings and the scripts directory, with `app_dir` on the import path as `serve` puts it."""
    from lastro.db.urls import check_database_url

    sys.path.insert(0, os.path.abspath(app_dir))
    try:
        # Migrations serve nothing and sign nothing: a release step may run them without SECRET_KEY.
        settings = load_settings()
        check_database_url(settings.DATABASE_URL)  # even where unused: a bad value is a bad value
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    return settings, Path(migrations_dir) if migrations_dir else settings.MIGRATIONS_DIR


def _database_or_fail(settings: Settings) -> Database:
    from lastro.db.engine import Database, normalize_url, safe_url

    url = normalize_url(settings.DATABASE_URL)
    try:
        return Database(url)
    except Exception as exc:  # e.g. the SQLite file's directory cannot be created
        fail(f"DATABASE_URL={safe_url(url)} is not usable: {one_line(exc)}", EXIT_STARTUP)
