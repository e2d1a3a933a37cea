"""`lastro backup`: make, verify and list backups of DATABASE_URL and BACKUP_PATHS (lastro.backup)."""

from __future__ import annotations

from pathlib import Path

import click

from lastro.cli.common import EXIT_FAILED, app_settings, fail

__all__ = ["backup"]


@click.group(invoke_without_command=True)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    show_default="$BACKUP_DIR or ./backups",
    help="Directory the backup is written into.",
)
@click.option(
    "--no-prune",
    is_flag=True,
    default=False,
    help="Keep every backup: skip the retention (BACKUP_KEEP, BACKUP_MAX_AGE_DAYS) that follows.",
)
@click.pass_context
def backup(context: click.Context, output: Path | None, no_prune: bool) -> None:
    """Make a backup now: a consistent copy of the database (while it serves) and of BACKUP_PATHS, then
    remove the backups retention no longer keeps (never the newest)."""
    if context.invoked_subcommand is not None:
        return
    from lastro.backup import BackupError, create_backup, prune

    settings = app_settings(".")
    try:
        result = create_backup(settings, output)
    except BackupError as exc:
        fail(str(exc), EXIT_FAILED)
    manifest = result.manifest
    click.echo(
        f"backup {result.path}: {manifest.database_kind} at revision {manifest.schema_revision or 'none'}, "
        f"{len(manifest.files)} files, {_size(result.size)}, {result.seconds:.2f} s"
    )
    if not no_prune:
        for path in prune(result.path.parent, settings.BACKUP_KEEP, settings.BACKUP_MAX_AGE_DAYS):
            click.echo(f"removed {path} (retention)")


@backup.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
def verify(path: Path | None) -> None:
    """Check a backup (default: the newest in BACKUP_DIR): checksums, integrity, schema revision."""
    from lastro.backup import BackupError, newest_backup, verify_backup

    try:
        if path is None:
            path = newest_backup(app_settings(".").BACKUP_DIR)
        manifest = verify_backup(path)
    except BackupError as exc:
        fail(str(exc), EXIT_FAILED)
    click.echo(
        f"ok {path}: {len(manifest.files)} files match the manifest, "
        f"{manifest.database_kind} database sound, revision {manifest.schema_revision or 'none'}"
    )


@backup.command(name="list")
def list_command() -> None:
    """List the backups in BACKUP_DIR, oldest first."""
    from lastro.backup import BackupError, Manifest, list_backups

    directory = app_settings(".").BACKUP_DIR
    for stored in list_backups(directory):
        try:
            manifest = Manifest.read(stored.path)
        except BackupError:
            click.echo(f"{stored.path}  incomplete (no readable manifest)")
            continue
        size = sum(entry.size for entry in manifest.files)
        click.echo(
            f"{stored.path}  {manifest.created_at}  {manifest.database_kind}  "
            f"revision {manifest.schema_revision or 'none'}  {_size(size)}"
        )


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns
