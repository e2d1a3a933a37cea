"""Async, atomic file storage: uploads written off the event loop, never visible half-written.

```python
store = lastro.FileStore(Path("var/images"))
await store.open()                       # creates the directory
name = store.new_name(".png")            # a fresh, safe storage name
size = await store.save(name, data)      # temp file, fsync, rename, fsync the directory
await store.delete(name)
await store.names(modified_before=cutoff)  # files last written before a Unix time, for orphan sweeps
```

A file is first written to a temporary name in the same directory, flushed to disk, and only then renamed
to its final name, so a crash leaves either the whole file or none of it. Callers that also record the
file in a database write the file first and the row second, and remove the row before the file: a crash
in between leaves at worst an unreferenced file, never a row without its file.

A write that finds the disk full (`ENOSPC`, or `EDQUOT` for a quota) leaves nothing behind and raises
`lastro.errors.StorageFull`, answered 507 like a full database.

`sniff_image(data)` tells PNG, JPEG and WebP apart by their first bytes, not by what the client claims.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
from pathlib import Path

import anyio.to_thread

from lastro.errors import StorageFull

__all__ = ["FileStore", "sniff_image"]

_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
_TEMPORARY_SUFFIX = ".partial"
_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def sniff_image(data: bytes) -> str | None:
    """The image content type the bytes carry (PNG, JPEG or WebP), or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class FileStore:
    """Files under one directory, addressed by storage names that cannot leave it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def open(self) -> None:
        """Create the directory and remove temporary files a crash may have left behind."""
        await anyio.to_thread.run_sync(self._open)

    def new_name(self, suffix: str = "") -> str:
        return self._checked(f"{secrets.token_hex(16)}{suffix}")

    def path(self, name: str) -> Path:
        return self.root / self._checked(name)

    async def save(self, name: str, data: bytes) -> int:
        """Write `data` under `name` atomically and durably; return its size."""
        target = self.path(name)
        try:
            await anyio.to_thread.run_sync(_write_atomically, target, data)
        except OSError as error:
            if error.errno in _FULL_ERRNOS:
                raise StorageFull(f"no space left for files under {self.root}") from None
            raise
        return len(data)

    async def exists(self, name: str) -> bool:
        return await anyio.to_thread.run_sync(self.path(name).is_file)

    async def delete(self, *names: str) -> None:
        """Remove files; one already gone is not an error."""
        paths = [self.path(name) for name in names]
        await anyio.to_thread.run_sync(_unlink_all, paths)

    async def names(self, modified_before: float | None = None) -> list[str]:
        """The stored files' names, those last written before `modified_before` (Unix time) if given.

        Files still being written (temporary names) are never listed.
        """
        return await anyio.to_thread.run_sync(self._names, modified_before)

    def _names(self, modified_before: float | None) -> list[str]:
        names = []
        for entry in os.scandir(self.root):
            if (
                not entry.is_file()
                or entry.name.endswith(_TEMPORARY_SUFFIX)
                or not _SAFE_NAME.fullmatch(entry.name)
            ):
                continue
            try:
                modified = entry.stat().st_mtime
            except FileNotFoundError:
                continue  # removed meanwhile
            if modified_before is None or modified < modified_before:
                names.append(entry.name)
        return sorted(names)

    def _open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob(f"*{_TEMPORARY_SUFFIX}"):
            leftover.unlink(missing_ok=True)

    @staticmethod
    def _checked(name: str) -> str:
        if not _SAFE_NAME.fullmatch(name) or name.endswith(_TEMPORARY_SUFFIX):
            raise ValueError(f"not a valid storage name: {name!r}")
        return name


def _write_atomically(target: Path, data: bytes) -> None:
    temporary = target.with_name(f"{target.name}.{secrets.token_hex(4)}{_TEMPORARY_SUFFIX}")
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk. Windows cannot open a directory.
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
