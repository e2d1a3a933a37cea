"""`lastro doctor`: the settings and this machine, checked before a deploy; exit code 1 on an error."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from lastro.cli.common import app_settings

__all__ = ["doctor"]


@click.command()
@click.option("--json", "as_json", is_flag=True, default=False, help="Print a JSON document instead of text.")
@click.option(
    "--app-dir",
    default=".",
    show_default=True,
    type=click.Path(exists=True, file_okay=False),
    help="The service's working directory: .env and relative paths (the SQLite file, BACKUP_DIR, "
    "--deploy-dir) are read from there.",
)
@click.option(
    "--deploy-dir",
    default="deploy",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where `lastro deploy` wrote the service manager's files (systemd/, docker/, nssm/).",
)
def doctor(as_json: bool, app_dir: str, deploy_dir: str) -> None:
    """Check the settings and this machine for a production deploy.

    Each finding has an id (lastro.E070: E error, W warning, I info), what is wrong and the fix. The exit
    code is 1 when there is an error (the service would refuse to start, or could lose data or requests),
    else 0; 2 for settings that do not parse.
    """
    from lastro.ops.doctor import CHECKS, Context, Machine, exit_code, render, run_checks, to_document

    os.chdir(app_dir)  # where the service runs: its .env, its relative paths
    settings = app_settings(".")  # not the refusals: reporting them is the point
    context = Context(settings, Machine.here(), Path(deploy_dir))
    findings = run_checks(context)
    if as_json:
        click.echo(json.dumps(to_document(findings, list(CHECKS)), indent=2))
    else:
        click.echo(render(findings, settings.SERVICE_NAME))
    raise SystemExit(exit_code(findings))
