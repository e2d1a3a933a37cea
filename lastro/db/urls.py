"""`check_database_url`: is `DATABASE_URL` a database lastro can use, with its driver installed?

Checked by the `lastro` commands before they build an engine, so that a typo, an engine lastro does not
support or a driver that is not installed is one line naming `DATABASE_URL` and the fix, instead of the
traceback SQLAlchemy raises from deep inside `create_engine`. SQLite needs nothing more (its driver is a
dependency); PostgreSQL goes through psycopg 3, which the `postgres` extra installs.
"""

from __future__ import annotations

import importlib
import re

from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError

from lastro.db.engine import normalize_url, safe_url
from lastro.errors import ConfigurationError, one_line

__all__ = ["INSTALL_POSTGRES", "check_database_url"]

INSTALL_POSTGRES = 'install the postgres extra (from a clone of lastro: pip install -e ".[postgres]")'
_EXAMPLES = "sqlite:///./var/app.db or postgresql://user:password@host:5432/name"
_DRIVERS = {"sqlite": ("pysqlite", "pysqlite3"), "postgresql": ("psycopg", "psycopg")}


def check_database_url(url: str) -> URL:
    """The URL as lastro reads it; raises `ConfigurationError` when it cannot be used, in one line."""
    try:
        parsed = normalize_url(url)
    except (ArgumentError, ValueError):
        raise ConfigurationError(
            f"DATABASE_URL must be a database URL, e.g. {_EXAMPLES} (got {_masked(url)!r})"
        ) from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend not in _DRIVERS:
        raise ConfigurationError(
            f"DATABASE_URL must be SQLite or PostgreSQL, e.g. {_EXAMPLES} (got {safe_url(parsed)!r})"
        )
    expected, module = _DRIVERS[backend]
    if driver != expected:
        raise ConfigurationError(
            f"DATABASE_URL names the driver {driver!r}; lastro uses {module} for {backend}: "
            f"write {backend}:// (got {safe_url(parsed)!r})"
        )
    if backend == "postgresql":
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigurationError(
                f"DATABASE_URL is PostgreSQL, whose driver psycopg 3 is not usable ({one_line(exc)}): "
                + INSTALL_POSTGRES
            ) from None
    return parsed


def _masked(url: str) -> str:
    """A URL SQLAlchemy could not parse, with whatever stands where a password would hidden."""
    return re.sub(r"(://[^:/@]*:).*@", r"\1***@", url)
