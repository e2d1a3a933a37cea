"""PostgreSQL: `pg_dump -Fc` to back up, `pg_restore --list` to verify, and a restore into a fresh database.

The URL's credentials reach the tools through the libpq environment (`PGPASSWORD`, `PGHOST`, ...), never
on the command line, where `ps` would show them. `pg_dump` must be at least the server's major version
(an older one refuses, or misses newer objects): the versions are compared first, so the failure is one
line naming both.

Restore never rewrites the database in place: `pg_restore` fills a new database
(`<name>_restore_<random>`, in one transaction), and only then two `ALTER DATABASE ... RENAME` swap it in,
the previous one kept as `<name>_before_<stamp>`. A rename fails while anyone is connected to the
database, which is the served check's last word, and the swap is undone by renaming back.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from lastro.backup.manifest import BackupError

__all__ = ["dump", "list_dump", "restore_dump", "sessions_on"]

_MAJOR = re.compile(r"(\d+)(?:\.\d+)?")
APPLICATION = "lastro-backup"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed: install the PostgreSQL client tools of the server's version "
            "(Debian: apt-get install postgresql-client)"
        )
    return found


def tool_env(url: URL, database: str | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    values = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": database or url.database,
        "PGAPPNAME": APPLICATION,
        "PGSSLMODE": _query(url, "sslmode"),
        "PGCONNECT_TIMEOUT": "10",
    }
    env.update({key: str(value) for key, value in values.items() if value})
    return env


def _query(url: URL, key: str) -> str | None:
    value = url.query.get(key)
    return value[0] if isinstance(value, tuple) else value


def _run(argv: list[str], env: dict[str, str], what: str, timeout: float | None = None) -> str:
    try:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} did not finish within {timeout:g} s") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {result.returncode}"
        raise BackupError(f"{what} failed: {reason}")
    return result.stdout


def _major(text: str) -> int:
    found = _MAJOR.search(text)
    return int(found.group(1)) if found else 0


def dump(url: URL, server_version: str, destination: Path) -> None:
    """`pg_dump -Fc` of the URL's database into `destination`."""
    pg_dump = _tool("pg_dump")
    env = tool_env(url)
    # "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)": the version follows the product's name
    own = _major(_run([pg_dump, "--version"], env, "pg_dump --version").partition(")")[2])
    server = _major(server_version)
    if own < server:
        raise BackupError(
            f"pg_dump is version {own}, older than the PostgreSQL server's {server}: install "
            f"postgresql-client-{server} or newer"
        )
    _run([pg_dump, "--format=custom", "--no-password", f"--file={destination}"], env, "pg_dump")


def list_dump(path: Path) -> list[str]:
    """The entries `pg_restore --list` reads from a dump (its table of contents); `BackupError` if it
    cannot read them."""
    output = _run([_tool("pg_restore"), "--list", str(path)], dict(os.environ), f"pg_restore --list {path}")
    return [line for line in output.splitlines() if line and not line.startswith(";")]


def sessions_on(connection: Any, database: str) -> list[str]:
    """Who else is connected to `database`: application names (or `pid N`) of the other sessions."""
    rows = connection.execute(
        "SELECT pid, application_name FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (database,),
    ).fetchall()
    return [str(name) if name else f"pid {pid}" for pid, name in rows]


def restore_dump(url: URL, path: Path, admin: Any, stamp: str, *, replace: bool) -> str | None:
    """Restore the dump as the URL's database; the previous database's new name, if there was one.

    `admin` is an autocommit psycopg connection to another database of the server (`postgres`).
    """
    target = str(url.database)
    exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target,)).fetchone() is not None
    if exists and not replace:
        raise BackupError(f"the database {target} exists: restore with --force to replace it (it is kept)")
    staging = f"{target[:40]}_restore_{secrets.token_hex(4)}"
    previous = f"{target[:40]}_before_{stamp.lower()}"
    admin.execute(f'CREATE DATABASE "{staging}"')
    try:
        _run(
            [
                _tool("pg_restore"),
                "--no-owner",
                "--no-acl",
                "--single-transaction",
                "--exit-on-error",
                "--no-password",
                f"--dbname={staging}",
                str(path),
            ],
            tool_env(url, staging),
            "pg_restore",
        )
        others = sessions_on(admin, target) if exists else []
        if others:
            raise BackupError(
                f"the database {target} is being served ({', '.join(sorted(set(others)))} connected): "
                "stop the service first; --force does not override this"
            )
        if exists:
            admin.execute(f'ALTER DATABASE "{target}" RENAME TO "{previous}"')
        try:
            admin.execute(f'ALTER DATABASE "{staging}" RENAME TO "{target}"')
        except BaseException:
            if exists:  # put the previous database back where it was
                admin.execute(f'ALTER DATABASE "{previous}" RENAME TO "{target}"')
            raise
    except BaseException:
        admin.execute(f'DROP DATABASE IF EXISTS "{staging}"')
        raise
    return previous if exists else None
