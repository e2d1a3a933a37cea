"""Where the data lives: the SQLite file's filesystem and free space, and whether backups are scheduled."""

from __future__ import annotations

from lastro.ops.doctor.context import Context, existing
from lastro.ops.doctor.findings import Finding
from lastro.ops.doctor.mounts import Mount, mount_of, parse_mountinfo

__all__ = ["check_backups", "check_disk_space", "check_filesystem"]

MIB = 1024 * 1024


def _mounts(context: Context) -> list[Mount]:
    try:
        return parse_mountinfo(context.machine.mountinfo.read_text())
    except OSError:  # not Linux: no mount table to read
        return []


def check_filesystem(context: Context) -> list[Finding]:
    path = context.database_path
    if path is None:
        return []
    mount = mount_of(path, _mounts(context))
    if mount is None:
        return []
    where = f"{path} is on {mount.point} ({mount.fstype} from {mount.source})"
    if mount.is_network:
        return [
            Finding(
                "lastro.E060",
                "error",
                f"{where}, a network filesystem: SQLite's locks and WAL's shared memory do not work "
                "across machines, and the database can be corrupted",
                "set DATABASE_URL to a file on a local disk, e.g. sqlite:////var/lib/SERVICE/app.db, "
                "or use PostgreSQL",
            )
        ]
    if mount.is_fuse:
        return [
            Finding(
                "lastro.W061",
                "warning",
                f"{where}, a FUSE filesystem: whether it honours SQLite's locks depends on it",
                "set DATABASE_URL to a file on a local disk (ext4, xfs, btrfs...), or check that the "
                "filesystem supports POSIX locks and shared memory maps",
            )
        ]
    return []


def check_disk_space(context: Context) -> list[Finding]:
    settings, path = context.settings, context.database_path
    if path is None:
        return []
    try:
        _total, _used, free = context.machine.disk_usage(existing(path))
        size = path.stat().st_size if path.exists() else 0
    except OSError as exc:  # a directory this user may not read
        return [
            Finding(
                "lastro.W092",
                "warning",
                f"the free space under {path.parent} could not be read: {exc}",
                "run `lastro doctor` as the service's user, from its working directory (--app-dir)",
            )
        ]
    minimum = settings.DISK_MIN_FREE_BYTES
    needed = minimum + settings.SQLITE_WAL_MAX_BYTES + 2 * size
    shown = f"{free // MIB} MiB free under {path.parent}"
    if minimum and free < minimum:
        return [
            Finding(
                "lastro.E090",
                "error",
                f"{shown}, less than DISK_MIN_FREE_BYTES={minimum}: /health/ready answers 503",
                f"free space on that volume, or move the database to a larger one (need {needed // MIB} MiB)",
            )
        ]
    if free < needed:
        return [
            Finding(
                "lastro.W091",
                "warning",
                f"{shown}, less than the {needed // MIB} MiB of DISK_MIN_FREE_BYTES + SQLITE_WAL_MAX_BYTES "
                f"+ twice the database ({size // MIB} MiB, for a backup or a VACUUM)",
                "free space on that volume, or move the database to a larger one",
            )
        ]
    return []


def check_backups(context: Context) -> list[Finding]:
    settings = context.settings
    found = []
    if settings.BACKUP_EVERY is None and not settings.BACKUP_CRON:
        found.append(
            Finding(
                "lastro.W050",
                "warning",
                "no backup schedule: BACKUP_EVERY and BACKUP_CRON are unset",
                "set BACKUP_EVERY=86400 (seconds) or BACKUP_CRON='0 3 * * *' (UTC), and try a restore",
            )
        )
    path = context.database_path
    if path is not None:
        mounts = _mounts(context)
        backups = mount_of(settings.BACKUP_DIR.absolute(), mounts)
        if backups is not None and backups == mount_of(path, mounts):
            found.append(
                Finding(
                    "lastro.I051",
                    "info",
                    f"BACKUP_DIR={settings.BACKUP_DIR} is on the database's filesystem ({backups.point}): "
                    "losing that disk loses both",
                    "set BACKUP_DIR to another disk, or copy the backups off the machine",
                )
            )
    return found
