"""What a fresh interpreter prints: for what `import` loads, which the test process has loaded already."""

from __future__ import annotations

import subprocess
import sys


def fresh_python_prints(code: str) -> str:
    """Run `code` with `python -c` in a new interpreter; its standard output, stripped."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()
