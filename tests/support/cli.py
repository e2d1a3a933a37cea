"""What a CLI test asks of a refused command: one `Error:` line on stderr and the exit code."""

from __future__ import annotations

import subprocess

from click.testing import Result


def assert_one_error_line(
    result: Result | subprocess.CompletedProcess[str], code: int, *fragments: str
) -> None:
    """`result` (in-process or a subprocess) exited `code` with exactly one stderr line, `Error: ...`,
    holding every fragment."""
    exit_code = result.exit_code if isinstance(result, Result) else result.returncode
    assert exit_code == code, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: ")
    for fragment in fragments:
        assert fragment in line
