"""ServiceState: code outside a request reaches the units of work without a None check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, text

import lastro
from tests.support.lifespan import running

pytestmark = pytest.mark.anyio


def _settings(sqlite_url: str) -> lastro.Settings:
    return lastro.get_settings(DATABASE_URL=sqlite_url, WORKERS=1)


def _create_notes(connection: Connection, *names: str) -> int:
    connection.execute(text("CREATE TABLE notes (name TEXT)"))
    for name in names:
        connection.execute(text("INSERT INTO notes VALUES (:name)"), {"name": name})
    return len(names)


def _names(connection: Connection) -> list[str]:
    return list(connection.execute(text("SELECT name FROM notes ORDER BY name")).scalars())


def test_transactions_before_start_up_raise_service_unavailable(sqlite_url: str) -> None:
    """Before start-up has opened the database, `state.transactions` raises ServiceUnavailable."""
    app = lastro.create_app(_settings(sqlite_url))
    state: lastro.ServiceState = app.state.lastro
    assert not state.is_open
    with pytest.raises(lastro.ServiceUnavailable, match="the database is not open yet"):
        _ = state.transactions


async def test_the_applications_lifespan_runs_units_of_work(sqlite_url: str) -> None:
    """The application's own lifespan writes and reads through `state.transactions`."""
    seen: list[object] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state: lastro.ServiceState = app.state.lastro
        seen.append(await state.transactions.write(_create_notes, "ada", "bob"))
        seen.append(await state.transactions.read(_names))
        yield

    app = lastro.create_app(_settings(sqlite_url), lifespan=lifespan)
    async with running(app):
        assert app.state.lastro.is_open
    assert seen == [2, ["ada", "bob"]]
