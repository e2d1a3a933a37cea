"""The serving path runs on Windows: nothing under lastro/ imports a POSIX-only module unguarded.

An import under `if sys.platform != "win32":` is allowed: the module has a Windows path of its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lastro

POSIX_ONLY = {"fcntl", "grp", "posix", "pty", "pwd", "resource", "syslog", "termios", "tty"}
PACKAGE = Path(lastro.__file__).parent


def _platform_guarded(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "sys.platform" in ast.unparse(node.test)


def _unguarded_nodes(tree: ast.AST) -> list[ast.AST]:
    found: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        found.append(node)
        pending.extend(child for child in ast.iter_child_nodes(node) if not _platform_guarded(child))
    return found


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in _unguarded_nodes(ast.parse(path.read_text())):
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


def test_a_platform_guarded_import_is_allowed(tmp_path: Path) -> None:
    """fcntl under `if sys.platform != "win32":` is not counted; the same import unguarded is."""
    guarded = tmp_path / "guarded.py"
    guarded.write_text('import sys\nif sys.platform != "win32":\n    import fcntl\n')
    unguarded = tmp_path / "unguarded.py"
    unguarded.write_text("import fcntl\n")
    assert "fcntl" not in imported_modules(guarded)
    assert "fcntl" in imported_modules(unguarded)
