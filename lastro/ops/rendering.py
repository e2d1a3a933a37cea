"""Templates of the files `lastro deploy` writes, and writing them without overwriting by surprise.

A template is a data file under `templates/`. What lastro fills in is marked `@name`, since the tools'
own syntax already uses `$` (nginx, systemd, Prometheus) and `{{ }}`; a PowerShell script, where `@` starts
hashtables and splatting, marks it `@@name` instead.
"""

from __future__ import annotations

import string
from importlib import resources
from pathlib import Path

__all__ = ["render", "write_files"]


class _Template(string.Template):
    delimiter = "@"


class _ScriptTemplate(string.Template):
    delimiter = "@@"


def render(name: str, **values: object) -> str:
    """The template `templates/<name>` with `values` filled in; KeyError if one is missing."""
    text = resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")
    template = _ScriptTemplate(text) if name.endswith(".ps1") else _Template(text)
    return template.substitute({key: str(value) for key, value in values.items()})


def write_files(directory: Path, files: dict[str, str], *, force: bool = False) -> list[Path]:
    """Write `files` into `directory` (created if missing); FileExistsError, before writing any, if one is
    there already and not `force`."""
    paths = [directory / name for name in files]
    existing = [str(path) for path in paths if path.exists()]
    if existing and not force:
        verb = "exists" if len(existing) == 1 else "exist"
        raise FileExistsError(f"{' and '.join(existing)} already {verb}: pass --force to overwrite")
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in zip(paths, files.values(), strict=True):
        path.write_text(text, encoding="utf-8", newline="\r\n" if path.suffix == ".ps1" else "\n")
    return paths
