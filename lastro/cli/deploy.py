"""`lastro deploy`: files that run the service under other tools."""

from __future__ import annotations

from pathlib import Path

import click

from lastro.cli.common import EXIT_CONFIG, EXIT_FAILED, fail
from lastro.errors import ConfigurationError, one_line
from lastro.settings import load_settings

__all__ = ["deploy"]


@click.group()
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
