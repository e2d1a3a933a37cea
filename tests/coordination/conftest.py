"""lastro's tables and their units of work on a real database, SQLite or PostgreSQL (a database of its
own, dropped afterwards), for the coordination tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from lastro.coordination.tables import ensure_tables
from lastro.db.engine import Database
from lastro.db.transactions import Transactions
from tests.conftest import POSTGRES_URL


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    name = f"lastro_coordination_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def transactions(database_url: str) -> Iterator[Transactions]:
    database = Database(database_url)
    ensure_tables(database)
    units = Transactions(database)
    yield units
    units.close()
    database.dispose()
