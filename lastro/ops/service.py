"""What every service manager's file says alike: the serve command, the unit name, the stop timeout.

A service manager stops `lastro serve` with SIGTERM (Ctrl+C on Windows): each worker stops accepting,
finishes its requests in flight within GRACEFUL_TIMEOUT, then runs the application's shutdown (closing
pools, flushing). Only after all that may the manager kill what is left, so its stop timeout is
GRACEFUL_TIMEOUT, rounded up as `lastro serve` rounds it, plus `SHUTDOWN_MARGIN`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from lastro.errors import ConfigurationError
from lastro.settings import Settings

__all__ = ["SHUTDOWN_MARGIN", "ServeCommand", "service_name", "stop_timeout"]

SHUTDOWN_MARGIN = 15  # seconds after GRACEFUL_TIMEOUT for the application's own shutdown
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_APP_DIR = re.compile(r"[\w./\\:+-]+")


@dataclass(frozen=True)
class ServeCommand:
    """`lastro serve TARGET [--factory] [--app-dir DIR]`, as a service manager runs it."""

    target: str
    factory: bool = False
    app_dir: str = "."

    def __post_init__(self) -> None:
        if not _TARGET.fullmatch(self.target):
            raise ConfigurationError(
                f"the application must be MODULE:APP, e.g. myapp.main:app (got {self.target!r})"
            )
        if not _APP_DIR.fullmatch(self.app_dir):
            raise ConfigurationError(
                f"--app-dir must be a path without spaces or quotes, e.g. src (got {self.app_dir!r})"
            )

    def upgrade_arguments(self) -> list[str]:
        """`db upgrade`, with the same --app-dir: the migrations' env.py imports the application's modules."""
        return ["db", "upgrade", *(["--app-dir", self.app_dir] if self.app_dir != "." else [])]

    def arguments(self) -> list[str]:
        """The arguments after the `lastro` executable."""
        args = ["serve", self.target]
        if self.factory:
            args.append("--factory")
        if self.app_dir != ".":
            args += ["--app-dir", self.app_dir]
        return args


def stop_timeout(settings: Settings) -> int:
    """Seconds a service manager waits after asking the service to stop, before killing it."""
    return math.ceil(settings.GRACEFUL_TIMEOUT) + SHUTDOWN_MARGIN


def service_name(settings: Settings) -> str:
    """SERVICE_NAME, checked to name a unit, a Windows service, an nginx upstream and their files."""
    name = settings.SERVICE_NAME
    if not _NAME.fullmatch(name):
        raise ConfigurationError(
            "SERVICE_NAME names the service's unit and files: letters, digits, '_', '.' and '-', "
            f"at most 64, starting with a letter or digit, e.g. orders (got {name!r})"
        )
    return name
