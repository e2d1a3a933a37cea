"""`lastro restore PATH`: put a backup back as DATABASE_URL and BACKUP_PATHS (lastro.backup.restore)."""

from __future__ import annotations

from pathlib import Path

import click

from lastro.cli.common import EXIT_FAILED, app_settings, fail

__all__ = ["restore"]


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    default=False,
    help="Replace a database or directory that exists (it is kept beside, as *before-restore*). "
    "Never replaces a database that is being served.",
)
def restore(path: Path, force: bool) -> None:
    """Restore the backup PATH; refused while the database is being served."""
    from lastro.backup import BackupError, restore_backup

    settings = app_settings(".")
    try:
        result = restore_backup(path, settings, force=force)
    except BackupError as exc:
        fail(str(exc), EXIT_FAILED)
    kept = f" (previous kept as {result.previous})" if result.previous else ""
    click.echo(f"restored {path} into {result.database}{kept}")
    for directory, previous in result.paths.items():
        kept = f" (previous kept as {previous})" if previous else ""
        click.echo(f"restored {directory}{kept}")
