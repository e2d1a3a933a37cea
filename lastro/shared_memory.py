"""Where files that a machine's workers map into memory live: `/dev/shm` on Linux.

A page of a mapped file on a disk is written back by the kernel every few seconds and write-protected again,
so the next write to it takes a page fault: on the request path (a rate-limit check, a metric) that cost the
orders service a tenth of its CPU (benchmarks/RESULTS.md, "Protection"). `/dev/shm` is a memory file
system: nothing is written back.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["memory_directory"]


def memory_directory(configured: Path | None = None) -> Path:
    """`configured` (SHARED_MEMORY_DIR) when given; else `/dev/shm` where this process may write there, else
    the temporary directory."""
    if configured is not None:
        return configured
    shm = Path("/dev/shm")
    return shm if os.access(shm, os.W_OK | os.X_OK) else Path(tempfile.gettempdir())
