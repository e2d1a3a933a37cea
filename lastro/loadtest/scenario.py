"""The users a run simulates: Locust `User` classes from --scenario, or the default that GETs the URL.

Imports Locust, which monkey-patches the standard library with gevent: only the command imports this
module, after checking its arguments. A scenario is `MODULE:CLASS` (importable from the current directory),
`PATH.py` (every concrete User class the file defines; Locust mixes them by `weight`) or `PATH.py:CLASS`.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from types import ModuleType

from locust import FastHttpUser, User, between, task

from lastro.errors import ConfigurationError, one_line_with_type

__all__ = ["GetUrl", "ScenarioError", "default_scenario", "load_scenario"]


class ScenarioError(ConfigurationError):
    """--scenario names no file, module or Locust User class that can be loaded."""


class GetUrl(FastHttpUser):
    """The default scenario: each user GETs the URL's path, then waits 0.5 to 1.5 s, like a person."""

    abstract = True
    wait_time = between(0.5, 1.5)
    network_timeout = 10.0  # an answer slower than this is a failure, and a step never waits longer
    connection_timeout = 10.0
    path = "/"

    @task
    def get(self) -> None:
        self.client.get(self.path)


def default_scenario(path: str) -> list[type[User]]:
    return [type("GetUrl", (GetUrl,), {"path": path, "abstract": False})]


def _is_user_class(value: object) -> bool:
    return inspect.isclass(value) and issubclass(value, User) and not value.__dict__.get("abstract", False)


def _load_file(spec: str, path: Path) -> ModuleType:
    if not path.is_file():
        raise ScenarioError(f"--scenario {spec}: no such file {path}")
    name = f"lastro_scenario_{path.stem}"
    loader = importlib.util.spec_from_file_location(name, path)
    if loader is None or loader.loader is None:
        raise ScenarioError(f"--scenario {spec}: {path} is not a Python file")
    module = importlib.util.module_from_spec(loader)
    sys.modules[name] = module
    loader.loader.exec_module(module)
    return module


def _load_module(spec: str, name: str) -> ModuleType:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `lastro serve` finds MODULE:APP
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise ScenarioError(f"--scenario {spec}: no module named {name!r}") from None
        raise


def load_scenario(spec: str) -> list[type[User]]:
    """The User classes `spec` names; a ScenarioError, one line, for anything that is not one."""
    source, _, class_name = spec.partition(":")
    is_file = source.endswith(".py") or os.sep in source or "/" in source
    try:
        module = _load_file(spec, Path(source)) if is_file else _load_module(spec, source)
    except ScenarioError:
        raise
    except Exception as exc:  # the scenario's own code failed on import: say how, on one line
        raise ScenarioError(f"--scenario {spec} failed to import: {one_line_with_type(exc)}") from None
    if class_name:
        found = getattr(module, class_name, None)
        if found is None:
            raise ScenarioError(f"--scenario {spec}: {source} has no {class_name}")
        if not _is_user_class(found):
            raise ScenarioError(
                f"--scenario {spec}: {class_name} is not a concrete Locust User class "
                "(subclass locust.HttpUser or FastHttpUser)"
            )
        return [found]
    classes = [
        value
        for value in vars(module).values()
        if _is_user_class(value) and value.__module__ == module.__name__
    ]
    if not classes:
        raise ScenarioError(
            f"--scenario {spec}: {source} defines no Locust User class "
            "(subclass locust.HttpUser or FastHttpUser)"
        )
    return classes
