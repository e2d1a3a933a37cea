"""`target_problem`: a MODULE:APP typo is found from the module's source, without importing it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lastro.serve.target import target_problem


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    return tmp_path


def write(app_dir: Path, name: str, source: str) -> None:
    (app_dir / f"{name}.py").write_text(source)


@pytest.mark.parametrize(
    "source",
    [
        "app = object()\n",
        "app: object = object()\n",
        "def app(scope, receive, send): ...\n",
        "async def app(scope, receive, send): ...\n",
        "class app: ...\n",
        "from os import path as app\n",
        "try:\n    app = 1\nexcept ImportError:\n    app = 2\n",
        "if True:\n    app, other = 1, 2\n",
        "with open(__file__) as app: ...\n",
        "for app in range(1): ...\n",
        "(app := 1)\n",
        "from os.path import *\n",
        "globals()['app'] = 1\n",
        "def __getattr__(name): ...\n",
        "def build():\n    global app\n    app = 1\nbuild()\n",
    ],
    ids=[
        "assign",
        "annotated",
        "def",
        "async-def",
        "class",
        "import-as",
        "try",
        "unpack-in-if",
        "with",
        "for",
        "walrus",
        "star-import",
        "globals",
        "module-getattr",
        "global-statement",
    ],
)
def test_a_module_that_binds_or_may_bind_app_passes(app_dir: Path, source: str) -> None:
    """Every module-level way of binding APP, and every way the parser cannot follow, is accepted."""
    write(app_dir, "target_ok", source)
    assert target_problem("target_ok:app", str(app_dir)) is None


def test_a_name_bound_only_inside_a_function_is_a_problem(app_dir: Path) -> None:
    """A local variable of a function is not the module's attribute."""
    write(app_dir, "target_local", "def create():\n    app = 1\n    return app\n")
    problem = target_problem("target_local:app", str(app_dir))
    assert problem is not None
    assert "defines no 'app'" in problem
    assert "target_local:app" in problem


def test_the_check_never_imports_the_module(app_dir: Path) -> None:
    """Module-level code does not run in the process that checks it."""
    marker = app_dir / "imported"
    write(app_dir, "target_side_effect", f"open({str(marker)!r}, 'w').close()\napp = 1\n")
    assert target_problem("target_side_effect:ap", str(app_dir)) is not None
    assert target_problem("target_side_effect:app", str(app_dir)) is None
    assert not marker.exists()
    assert "target_side_effect" not in sys.modules


def test_a_dotted_app_checks_its_first_name(app_dir: Path) -> None:
    """`module:holder.app` is accepted when `holder` is bound; uvicorn resolves the rest."""
    write(app_dir, "target_dotted", "class holder:\n    app = 1\n")
    assert target_problem("target_dotted:holder.app", str(app_dir)) is None
    assert target_problem("target_dotted:other.app", str(app_dir)) is not None


@pytest.mark.parametrize("target", ["nocolon", ":app", "module:", "target_x:not-a-name"])
def test_a_malformed_target_is_a_problem(app_dir: Path, target: str) -> None:
    """A TARGET without both parts, or whose APP is not a name, is refused with the expected form."""
    write(app_dir, "target_x", "app = 1\n")
    problem = target_problem(target, str(app_dir))
    assert problem is not None
    assert "MODULE:APP" in problem


def test_a_missing_module_is_a_problem(app_dir: Path) -> None:
    """A module not on the import path is named in the problem."""
    problem = target_problem("target_absent:app", str(app_dir))
    assert problem is not None
    assert "no module named 'target_absent'" in problem


def test_a_module_with_a_syntax_error_is_left_to_the_worker(app_dir: Path) -> None:
    """Source that does not parse passes: the worker's import reports the error with its line."""
    write(app_dir, "target_broken", "app = (\n")
    assert target_problem("target_broken:app", str(app_dir)) is None
