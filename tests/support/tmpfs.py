"""A small tmpfs for disk-full tests: a real filesystem that runs out of space, mounted and always unmounted.

Mounting needs root (CI runs as root); elsewhere the test is skipped and says why.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(directory: Path, size_mib: int) -> Iterator[Path]:
    """Mount a tmpfs of `size_mib` MiB on `directory` (created) for the block."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a disk-full test mounts a small tmpfs, which needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mib}M", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False, capture_output=True)


def fill(directory: Path, name: str = "filler") -> Path:
    """Write zeros into `directory/name` until the filesystem refuses more; the file is kept."""
    path = directory / name
    block = b"\0" * (64 * 1024)
    with path.open("ab", buffering=0) as file:
        for _ in range(1_000_000):  # bounded: a 64 GiB volume at most
            try:
                file.write(block)
            except OSError:
                break
        for _ in range(16):  # tmpfs allocates 4 KiB pages: fill what a 64 KiB write could not
            try:
                file.write(b"\0" * 4096)
            except OSError:
                break
    return path
