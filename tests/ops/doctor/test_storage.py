"""The storage checks: the SQLite file's filesystem and free space, and the backup schedule."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lastro.ops.doctor.storage import check_disk_space
from tests.ops.doctor.conftest import Doctor
from tests.support.machines import LOCAL

MIB = 1024**2
POSTGRES = "postgresql://app@db:5432/app"


@pytest.mark.parametrize(
    ("fstype", "source"),
    [("nfs4", "nas:/export"), ("cifs", "//nas/share"), ("fuse.sshfs", "me@host:/srv"), ("9p", "hostshare")],
)
def test_sqlite_on_a_network_filesystem_is_an_error(doctor: Doctor, fstype: str, source: str) -> None:
    """The database under an nfs, smb, sshfs or 9p mount: lastro.E060 names the mount and its type."""
    finding = doctor.one("lastro.E060", mounts=[*LOCAL, ("/srv", fstype, source)])
    assert f"/srv ({fstype} from {source})" in finding.message
    assert "local disk" in finding.fix


def test_an_unknown_fuse_filesystem_is_a_warning(doctor: Doctor) -> None:
    """A FUSE type of unknown kind may or may not lock: lastro.W061."""
    assert doctor.ids(mounts=[*LOCAL, ("/srv", "fuse.mystery", "mystery")]) == ["lastro.W061"]


def test_the_longest_mount_point_decides(doctor: Doctor) -> None:
    """A local disk mounted at /srv/orders inside an nfs /srv holds the file: nothing."""
    mounts = [*LOCAL, ("/srv", "nfs", "nas:/srv"), ("/srv/orders", "xfs", "/dev/sdb1")]
    assert doctor.findings(mounts=mounts) == []


def test_a_mount_point_with_a_space_is_read(doctor: Doctor) -> None:
    """mountinfo escapes a space as \\040: the point is matched unescaped."""
    mounts = [*LOCAL, ("/srv/my data", "nfs", "nas:/data")]
    assert "lastro.E060" in doctor.ids({"DATABASE_URL": "sqlite:////srv/my data/app.db"}, mounts=mounts)


def test_postgresql_has_no_file_to_check(doctor: Doctor) -> None:
    """PostgreSQL's files are the server's: no filesystem or disk finding, whatever the mounts."""
    settings = {"DATABASE_URL": POSTGRES}
    assert doctor.findings(settings, mounts=[("/", "nfs", "nas:/")], free=0) == []


def test_free_space_below_the_ready_threshold_is_an_error(doctor: Doctor) -> None:
    """Less free than DISK_MIN_FREE_BYTES: lastro.E090, ready answers 503."""
    finding = doctor.one("lastro.E090", free=10 * MIB)
    assert "DISK_MIN_FREE_BYTES" in finding.message


def test_free_space_for_the_wal_and_a_copy_is_a_warning(doctor: Doctor, tmp_path: Path) -> None:
    """A 100 MiB database with room for the threshold and the WAL but not two copies: lastro.W091."""
    database = tmp_path / "app.db"
    with database.open("wb") as file:
        file.truncate(100 * MIB)
    settings = {"DATABASE_URL": f"sqlite:///{database}", "BACKUP_DIR": "/backups/app"}
    free = (64 + 64 + 150) * MIB
    finding = doctor.one("lastro.W091", settings, free=free)
    assert "twice the database (100 MiB" in finding.message
    assert doctor.findings(settings, free=free + 60 * MIB) == []


def test_no_backup_schedule_is_a_warning(doctor: Doctor) -> None:
    """Neither BACKUP_EVERY nor BACKUP_CRON: lastro.W050, naming both."""
    finding = doctor.one("lastro.W050", {"BACKUP_EVERY": None})
    assert "BACKUP_EVERY" in finding.fix
    assert "BACKUP_CRON" in finding.fix


def test_a_cron_schedule_is_a_schedule(doctor: Doctor) -> None:
    """BACKUP_CRON alone is enough."""
    assert doctor.findings({"BACKUP_EVERY": None, "BACKUP_CRON": "0 3 * * *"}) == []


def test_backups_on_the_databases_disk_are_information(doctor: Doctor) -> None:
    """BACKUP_DIR on the database's filesystem: lastro.I051."""
    assert doctor.ids({"BACKUP_DIR": "/srv/backups"}) == ["lastro.I051"]


def test_free_space_that_cannot_be_read_is_a_warning(doctor: Doctor) -> None:
    """statfs refused (a directory this user may not read): lastro.W092, not a traceback."""

    def refused(path: Path) -> tuple[int, int, int]:
        raise PermissionError(13, "Permission denied", str(path))

    context = doctor.context()
    machine = dataclasses.replace(context.machine, disk_usage=refused)
    found = check_disk_space(dataclasses.replace(context, machine=machine))
    assert [finding.id for finding in found] == ["lastro.W092"]
    assert "Permission denied" in found[0].message
