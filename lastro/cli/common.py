"""What every command shares: the exit codes, one-line failures, and the settings' options."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import click

from lastro.errors import ConfigurationError, one_line
from lastro.settings import Settings, load_settings

if TYPE_CHECKING:
    from lastro.db.engine import Database

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_STARTUP",
    "app_settings",
    "database_or_fail",
    "fail",
    "setting_option",
]

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


def app_settings(app_dir: str) -> Settings:
    """The settings of a command that serves nothing and signs nothing (no SECRET_KEY needed), with
    `app_dir` on the import path as `serve` puts it, and DATABASE_URL checked even where unused."""
    from lastro.db.urls import check_database_url

    sys.path.insert(0, os.path.abspath(app_dir))
    try:
        settings = load_settings()
        check_database_url(settings.DATABASE_URL)  # even where unused: a bad value is a bad value
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    return settings


def database_or_fail(settings: Settings) -> Database:
    from lastro.db.engine import Database, normalize_url, safe_url

    url = normalize_url(settings.DATABASE_URL)
    try:
        return Database(url)
    except Exception as exc:  # e.g. the SQLite file's directory cannot be created
        fail(f"DATABASE_URL={safe_url(url)} is not usable: {one_line(exc)}", EXIT_STARTUP)
