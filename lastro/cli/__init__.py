"""The `lastro` command: a thin layer over the programmatic functions.

Each command lives in a module of its own here, imported when the command runs (`COMMANDS`). Every option
of `lastro serve` is also a setting: the option, when given, is exported to the environment so that the
workers, which read their settings on start, see the same values. A user error is one `Error: ...` line on
stderr and a non-zero exit code (see `lastro.cli.common`), never a traceback.
"""

from __future__ import annotations

import importlib

import click

from lastro._version import __version__

__all__ = ["main"]

# Each command's module is imported when the command runs (or `--help` lists it): `lastro deploy` does not
# load the database layer, nor `lastro loadtest` the server.
COMMANDS = {
    "serve": "lastro.cli.serve",
    "db": "lastro.cli.db",
    "deploy": "lastro.cli.deploy",
    "doctor": "lastro.cli.doctor",
    "backup": "lastro.cli.backup",
    "restore": "lastro.cli.restore",
    "loadtest": "lastro.cli.loadtest",
    "drain": "lastro.cli.control",
    "reload": "lastro.cli.control",
}


class _Commands(click.Group):
    """A group whose commands are imported by name, the first time they are asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            command = getattr(importlib.import_module(COMMANDS[cmd_name]), cmd_name)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands)
@click.version_option(__version__, prog_name="lastro")
def main() -> None:
    """lastro: run a FastAPI app as a production service."""
