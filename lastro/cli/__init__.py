"""The `lastro` command: a thin layer over the programmatic functions.

Each command lives in a module of its own here and is registered below. Every option of `lastro serve` is
also a setting: the option, when given, is exported to the environment so that the workers, which read
their settings on start, see the same values. A user error is one `Error: ...` line on stderr and a
non-zero exit code (see `lastro.cli.common`), never a traceback.
"""

from __future__ import annotations

import click

from lastro._version import __version__
from lastro.cli.backup import backup
from lastro.cli.control import drain, reload
from lastro.cli.db import db
from lastro.cli.deploy import deploy
from lastro.cli.doctor import doctor
from lastro.cli.loadtest import loadtest
from lastro.cli.restore import restore
from lastro.cli.serve import serve

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="lastro")
def main() -> None:
    """lastro: run a FastAPI app as a production service."""


main.add_command(serve)
main.add_command(db)
main.add_command(deploy)
main.add_command(doctor)
main.add_command(backup)
main.add_command(restore)
main.add_command(loadtest)
main.add_command(drain)
main.add_command(reload)
