"""Which filesystem holds a path: the longest mount point of /proc/self/mountinfo that contains it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NETWORK_TYPES", "Mount", "mount_of", "parse_mountinfo"]

# Filesystems over a network: SQLite's locks and WAL's shared memory are not reliable on them (sqlite.org,
# "Use Over a Network"). FUSE types not listed are reported as unknown, not as network.
NETWORK_TYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb",
        "smb3",
        "smbfs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "afs",
        "gpfs",
        "beegfs",
        "davfs",
        "fuse.sshfs",
        "fuse.glusterfs",
        "fuse.s3fs",
        "fuse.rclone",
        "fuse.gcsfuse",
        "fuse.davfs2",
        "fuse.cephfs",
    }
)
_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    point: Path
    fstype: str
    source: str

    @property
    def is_network(self) -> bool:
        return self.fstype in NETWORK_TYPES

    @property
    def is_fuse(self) -> bool:
        return self.fstype == "fuse" or self.fstype.startswith("fuse.")


def _unescape(field: str) -> str:
    """mountinfo writes a space as `\\040`, a tab as `\\011`, ..."""
    return _ESCAPE.sub(lambda found: chr(int(found.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """Each line: `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER`; lines that do not
    have that shape are skipped."""
    mounts = []
    for line in text.splitlines():
        before, sep, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if sep and len(fields) >= 5 and len(tail) >= 2:
            mounts.append(Mount(Path(_unescape(fields[4])), tail[0], _unescape(tail[1])))
    return mounts


def mount_of(path: Path, mounts: list[Mount]) -> Mount | None:
    """The mount holding `path` (made absolute, symbolic links resolved): the longest point above it."""
    resolved = path.resolve()
    holding = [mount for mount in mounts if resolved == mount.point or mount.point in resolved.parents]
    return max(holding, key=lambda mount: len(mount.point.parts), default=None)
