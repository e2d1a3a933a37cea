"""PostgreSQL databases of a test's own, on the tests' server: named, made and dropped in one place."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.conftest import POSTGRES_URL

__all__ = [
    "conninfo",
    "create_database",
    "database_name",
    "drop_database",
    "postgres_url_for",
    "scratch_database",
    "scratch_table",
]


def database_name(prefix: str) -> str:
    """A database name nobody else uses: `prefix_` and 12 hex digits."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def postgres_url_for(name: str, *, driver: str = "postgresql+psycopg", port: int | None = None) -> str:
    """The URL of database `name` on the tests' server (or on `port`, a proxy's in front of it)."""
    server = conninfo_to_dict(POSTGRES_URL)
    host, user = server.get("host", "127.0.0.1"), server.get("user", "postgres")
    return f"{driver}://{user}@{host}:{port or server.get('port', 5432)}/{name}"


def conninfo(name: str) -> str:
    """A psycopg connection string for database `name` on the tests' server."""
    return make_conninfo(POSTGRES_URL, dbname=name)


def create_database(name: str, *, template: str | None = None) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        admin.execute(statement)


def drop_database(name: str) -> None:
    """Drop database `name` and its connections; quietly, so that a teardown never hides a test's failure."""
    with suppress(psycopg.Error), psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A new empty database named after `prefix`, dropped on the way out; yields its name."""
    name = database_name(prefix)
    create_database(name)
    try:
        yield name
    finally:
        drop_database(name)


@contextmanager
def scratch_table(prefix: str, columns: str) -> Iterator[str]:
    """A new table `(columns)` in the tests' database, named after `prefix`, dropped on the way out."""
    name = database_name(prefix)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(name), sql.SQL(columns)))
    try:
        yield name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
