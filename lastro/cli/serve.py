"""`lastro serve`: the supervisor and its workers."""

from __future__ import annotations

import os
import secrets
import sys

import click

from lastro.cli.common import EXIT_CONFIG, EXIT_STARTUP, fail, setting_option
from lastro.errors import ConfigurationError
from lastro.settings import get_settings

__all__ = ["serve"]


@click.command()
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
    "--worker-start", "WORKER_START_METHOD", "auto (fork on Linux, spawn elsewhere) or spawn (everywhere)."
)
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
    from lastro.db.file_lock import check_backend
    from lastro.db.sqlite import check_pragmas, pragmas_for
    from lastro.db.urls import check_database_url
    from lastro.observability.tracing import check_tracing
    from lastro.serve import ServeConfig, run
    from lastro.serve.preflight import check_database, check_schema
    from lastro.serve.supervisor import forks_workers
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
        check_backend(settings.SQLITE_WRITE_LOCK)
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
    if forks_workers(settings.WORKER_START_METHOD):
        _preload()
    sys.exit(run(ServeConfig(target=target, settings=settings, workers=workers, factory=factory)))


def _preload() -> None:
    """Import lastro's public API, and FastAPI, SQLAlchemy and pydantic with it, in the supervisor before
    it forks the workers: each worker then finds them loaded and imports only the application's modules.
    (A worker spawned after a SIGHUP imports everything afresh, new versions included.)"""
    import lastro

    for name in lastro.__all__:
        getattr(lastro, name)
