"""Fresh interpreters: what one prints (for what `import` loads, which the test process has loaded already),
and the benchmark scripts, each run as its own `python -m` from the repository's root."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

from tests.support.process import ROOT


def fresh_python_prints(code: str) -> str:
    """Run `code` with `python -c` in a new interpreter; its standard output, stripped."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()


def run_benchmark(
    module: str, *args: str, timeout: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m benchmarks.<module> *args` from the repository's root, its output captured; whatever its
    exit code (the test reads it)."""
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
