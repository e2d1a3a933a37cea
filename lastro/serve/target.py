"""`target_problem`: is `MODULE:APP` something the workers can load? Answered without importing it.

The supervisor never imports the application (the workers are forked from it, and an import would run the
module-level code once more, open its connections, and make every worker carry what it built). So a typo
is found from the source instead: the module is located with `importlib.util.find_spec` (only its parent
packages are imported), and its file is parsed to see whether it binds APP at module level (an assignment,
a `def`, a `class` or an import). A module that may bind names in ways the parser cannot follow (`import *`,
a module `__getattr__`, `globals()`, `exec`, a `global` statement naming APP) or that is not Python source
is given the benefit of the doubt: its worker reports a real failure to load it as before.
"""

from __future__ import annotations

import ast
import importlib.util
from importlib.machinery import ModuleSpec
from pathlib import Path

__all__ = ["target_problem"]

EXAMPLE = "myapp:app"
_DYNAMIC_CALLS = frozenset({"globals", "exec", "setattr", "vars"})


def target_problem(target: str, app_dir: str) -> str | None:
    """None when `target` looks loadable, else one line naming what is wrong."""
    module, sep, attribute = target.partition(":")
    if not sep or not module or not attribute:
        return f"TARGET must be MODULE:APP, e.g. {EXAMPLE} (got {target!r})"
    spec = _find_spec(module)
    if spec is None:
        return f"no module named {module!r} on the import path (TARGET {target!r}, --app-dir {app_dir})"
    name = attribute.split(".", 1)[0]
    if not name.isidentifier():
        return f"TARGET must be MODULE:APP, APP a Python name, e.g. {EXAMPLE} (got {target!r})"
    origin = spec.origin
    if origin is None or not origin.endswith(".py"):
        return None  # a namespace package or a compiled module: nothing to read
    try:
        source = Path(origin).read_text(encoding="utf-8")
        tree = ast.parse(source, filename=origin)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None  # the worker's import says what is wrong, with the line
    if _may_bind(tree, name):
        return None
    return f"module {module!r} ({origin}) defines no {name!r} at module level (TARGET {target!r})"


def _find_spec(name: str) -> ModuleSpec | None:
    if any(not part.isidentifier() for part in name.split(".")):
        return None
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a parent package is missing, or is a module
        return None


def _may_bind(tree: ast.Module, name: str) -> bool:
    """True if the module binds `name` at module level, or might through something not read here."""
    if name in _module_level_names(tree):
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            return True
        if isinstance(node, ast.Global) and name in node.names:
            return True
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__" and node in tree.body:
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _DYNAMIC_CALLS:
            return True
    return False


def _module_level_names(tree: ast.Module) -> set[str]:
    """Names bound by the module's own statements, including those under `if`, `try`, `with` and `for`."""
    names: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue  # names inside a function or class body are not the module's
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".", 1)[0] for alias in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        pending.extend(ast.iter_child_nodes(node))
    return names
