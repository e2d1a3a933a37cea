"""`BACKUP_PATHS`: directories of stored files (an application's images, say) copied into a backup.

Each directory goes to `files/<name>/` in the backup, `<name>` its last component (with `-2`, `-3` for a
second one of the same name), every file listed in the manifest with its size and SHA-256. Files that
change while they are copied are whatever they were when read: stored files are written whole and renamed
into place (`lastro.files.FileStore`), so each one read is a whole file.

Restoring a directory writes the backup's copy beside it (`<dir>.restore-<random>`), checks it, then swaps:
the directory in place is renamed to `<dir>.before-restore-<stamp>` and the copy takes its name.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from lastro.backup.manifest import BackupError, FileEntry, fsync_directory, sha256_of

__all__ = ["copy_paths", "restore_path"]

FILES = "files"


def copy_paths(sources: list[Path], backup: Path) -> tuple[dict[str, str], list[FileEntry]]:
    """Copy each source directory into `backup/files/`; the names given and every file's entry."""
    names: dict[str, str] = {}
    entries: list[FileEntry] = []
    for source in sources:
        resolved = source.resolve()
        if not resolved.is_dir():
            raise BackupError(f"BACKUP_PATHS names {source}, which is not a directory")
        name = _free_name(resolved.name or "root", names)
        names[name] = str(resolved)
        entries += _copy_tree(resolved, backup, Path(FILES) / name)
    return names, entries


def _free_name(name: str, taken: dict[str, str]) -> str:
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}-{number}"
    return candidate


def _copy_tree(source: Path, backup: Path, relative: Path) -> list[FileEntry]:
    entries = []
    for folder, directories, files in os.walk(source):
        directories.sort()
        here = Path(folder)
        target_folder = backup / relative / here.relative_to(source)
        target_folder.mkdir(parents=True, exist_ok=True)
        for file_name in sorted(files):
            path = here / file_name
            if path.is_symlink() or not path.is_file():
                continue
            target = target_folder / file_name
            try:
                shutil.copyfile(path, target)
            except FileNotFoundError:  # deleted while the backup ran: it is not part of this backup
                continue
            _fsync(target)
            entries.append(
                FileEntry(str(target.relative_to(backup)), target.stat().st_size, sha256_of(target))
            )
        fsync_directory(target_folder)
    return entries


def _fsync(path: Path) -> None:
    with path.open("rb") as file:
        os.fsync(file.fileno())


def restore_path(backup: Path, name: str, destination: Path, entries: list[FileEntry], stamp: str) -> Path:
    """Put the backup's `files/<name>` at `destination`; where the previous directory was moved to."""
    prefix = f"{FILES}/{name}/"
    mine = [entry for entry in entries if entry.path.startswith(prefix)]
    parent = destination.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f"{destination.name}.restore-{secrets.token_hex(4)}"
    try:
        staging.mkdir()
        for entry in mine:
            target = staging / entry.path.removeprefix(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(backup / entry.path, target)
            if sha256_of(target) != entry.sha256:
                raise BackupError(f"{backup / entry.path} does not match its checksum in the manifest")
            _fsync(target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise BackupError(f"cannot restore {destination}: {error.strerror or error}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = parent / f"{destination.name}.before-restore-{stamp}"
    if destination.exists():
        destination.rename(previous)
    staging.rename(destination)
    fsync_directory(parent)
    return previous
