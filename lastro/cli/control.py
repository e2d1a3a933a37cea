"""`lastro drain` and `lastro reload`: control a running `lastro serve` without signals (Windows).

Both find the service through its control directory (`CONTROL_DIR`, see `lastro.control`): run them with
the service's settings, from its working directory.
"""

from __future__ import annotations

import click

from lastro.cli.common import EXIT_FAILED, app_settings, fail
from lastro.control import ControlDirectory, control_directory

__all__ = ["drain", "reload"]


def _running_service() -> tuple[ControlDirectory, int]:
    control = ControlDirectory(control_directory(app_settings(".")))
    pid = control.running_pid()
    if pid is None:
        fail(
            f"no lastro serve is running with CONTROL_DIR={control.path}; run this command with the "
            "service's settings and from its working directory",
            EXIT_FAILED,
        )
    return control, pid


@click.command()
@click.option("--off", is_flag=True, default=False, help="End the drain: ready answers 200 again.")
def drain(off: bool) -> None:
    """Turn /health/ready to 503 on every worker, so a balancer stops sending; requests that still arrive
    are served. It lasts until `lastro drain --off` or the service's next start."""
    if off:
        control = ControlDirectory(control_directory(app_settings(".")))
        control.drain(on=False)
        click.echo(f"drain off: /health/ready answers as its checks say ({control.path})")
        return
    control, pid = _running_service()
    try:
        control.drain()
    except OSError as error:
        fail(f"cannot write to CONTROL_DIR={control.path}: {error}", EXIT_FAILED)
    click.echo(f"draining: /health/ready answers 503 on every worker of lastro serve [{pid}]")


@click.command("reload")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    show_default="TIMEOUT x (workers + 1)",
    help="Seconds to wait for the supervisor's answer.",
)
def reload(timeout: float | None) -> None:
    """Restart the workers one by one, each new one ready before the old one stops (SIGHUP's rolling
    restart, for systems without SIGHUP). Exits non-zero if the restart was refused or failed."""
    from lastro.workers import resolve_workers

    settings = app_settings(".")
    control, pid = _running_service()
    if timeout is None:
        timeout = settings.TIMEOUT * (resolve_workers(settings.WORKERS, settings.DATABASE_URL) + 1)
    try:
        result = control.reload(timeout)
    except OSError as error:
        fail(f"cannot write to CONTROL_DIR={control.path}: {error}", EXIT_FAILED)
    if result is None:
        fail(f"lastro serve [{pid}] gave no answer within {timeout:g} s; the reload may yet run", EXIT_FAILED)
    if not result.ok:
        fail(f"reload of lastro serve [{pid}]: {result.detail}", EXIT_FAILED)
    click.echo(f"reloaded lastro serve [{pid}]: {result.detail}")
