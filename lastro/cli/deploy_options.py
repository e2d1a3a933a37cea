"""What every `lastro deploy` target shares: the application's options, the output options, and writing the
files with every refusal one `Error:` line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from lastro.cli.common import EXIT_CONFIG, EXIT_FAILED, fail
from lastro.errors import ConfigurationError, one_line
from lastro.settings import Settings, load_settings

__all__ = ["app_options", "deploy_settings", "output_options", "write_or_fail"]


def app_options(command: Callable[..., None]) -> Callable[..., None]:
    """The application as `lastro serve` takes it: MODULE:APP, --factory, --app-dir."""
    command = click.option(
        "--app-dir",
        default=".",
        show_default=True,
        help="Directory added to the import path before the application is imported, as for serve.",
    )(command)
    command = click.option("--factory", is_flag=True, default=False, help="APP is an app factory.")(command)
    return click.argument("app", metavar="MODULE:APP")(command)


def output_options(default: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        command = click.option(
            "--force", is_flag=True, default=False, help="Overwrite the files if they are there."
        )(command)
        return click.option(
            "--output",
            default=default,
            show_default=True,
            type=click.Path(file_okay=False),
            help="Directory the files are written to; created if missing.",
        )(command)

    return decorate


def write_or_fail(directory: Path, build: Callable[[], dict[str, str]], *, force: bool) -> list[Path]:
    """Build the files and write them; every refusal one `Error:` line."""
    from lastro.ops.rendering import write_files

    try:
        return write_files(directory, build(), force=force)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    except FileExistsError as exc:
        fail(str(exc), EXIT_FAILED)
    except OSError as exc:
        fail(f"writing {directory} failed: {one_line(exc)}", EXIT_FAILED)


def deploy_settings() -> Settings:
    try:
        return load_settings()  # writes files for another tool: serves nothing, signs nothing
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
