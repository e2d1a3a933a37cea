"""The serving path runs on Windows: nothing under lastro/ imports a POSIX-only module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lastro

POSIX_ONLY = {"fcntl", "grp", "posix", "pty", "pwd", "resource", "syslog", "termios", "tty"}
PACKAGE = Path(lastro.__file__).parent


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[str(path.relative_to(PACKAGE)) for path in MODULES])
def test_module_imports_nothing_posix_only(path: Path) -> None:
    """Each lastro module imports only what exists on Windows too."""
    assert imported_modules(path).isdisjoint(POSIX_ONLY)
