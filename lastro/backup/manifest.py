"""A backup's manifest (`manifest.json`): what the backup holds, with a SHA-256 and a size per file.

Written last, inside the temporary directory, before the rename that publishes the backup; `verify` reads
it back and checks every file against it. `FORMAT` changes when the layout does; a newer format is refused
by name rather than misread.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lastro.errors import LastroError

__all__ = [
    "FORMAT",
    "MANIFEST",
    "BackupError",
    "FileEntry",
    "Manifest",
    "fsync_directory",
    "fsync_file",
    "sha256_of",
]

FORMAT = 1
MANIFEST = "manifest.json"
_CHUNK = 1024 * 1024


class BackupError(LastroError):
    """A backup could not be made, verified or restored; the message is one line that says why."""


@dataclass(frozen=True)
class FileEntry:
    """One file of the backup, relative to its directory."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    lastro_version: str
    created_at: str  # ISO 8601, UTC
    database_kind: str  # sqlite | postgresql
    database_file: str  # the copy or the dump, relative to the backup
    schema_revision: str | None
    tables: dict[str, int]
    files: list[FileEntry]
    paths: dict[str, str] = field(default_factory=dict)  # BACKUP_PATHS: name in files/ -> absolute source
    duration_s: float = 0.0
    format: int = FORMAT

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST
        document = asdict(self)
        with path.open("w", encoding="utf-8") as file:
            json.dump(document, file, indent=2, sort_keys=True)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        return path

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """The manifest of the backup `directory`; `BackupError` if it is missing or not one lastro wrote."""
        path = directory / MANIFEST
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BackupError(f"{directory} is not a backup: it has no {MANIFEST}") from None
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise BackupError(f"{path} is not a readable manifest: {error}") from None
        return cls.from_document(document, path)

    @classmethod
    def from_document(cls, document: Any, path: Path) -> Manifest:
        if not isinstance(document, dict):
            raise BackupError(f"{path} is not a backup manifest: a JSON object was expected")
        version = document.get("format")
        if isinstance(version, int) and version > FORMAT:
            raise BackupError(
                f"{path} has format {version}; this lastro reads format {FORMAT}: use a newer lastro"
            )
        try:
            files = [FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in document["files"]]
            return cls(
                format=int(document["format"]),
                lastro_version=str(document["lastro_version"]),
                created_at=str(document["created_at"]),
                database_kind=str(document["database_kind"]),
                database_file=str(document["database_file"]),
                schema_revision=_optional(document.get("schema_revision")),
                tables={str(name): int(count) for name, count in dict(document.get("tables", {})).items()},
                files=files,
                paths={str(name): str(source) for name, source in dict(document.get("paths", {})).items()},
                duration_s=float(document.get("duration_s", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise BackupError(f"{path} is not a backup manifest: {type(error).__name__} {error}") from None


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path: Path) -> None:
    """Make a rename or a new entry in `path` durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows: directories are not opened this way, and NTFS journals the rename
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
