"""ReadUnit and WriteUnit: `unit.run(work, *args, **kwargs)`, checked by mypy at the call site."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Connection, text

import lastro
from lastro.db.engine import Database
from lastro.db.transactions import Transactions
from lastro.units import UnitOfWork

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def transactions(sqlite_url: str) -> Iterator[Transactions]:
    database = Database(sqlite_url)
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    transactions = Transactions(database)
    yield transactions
    transactions.close()
    database.dispose()


def _add(connection: Connection, body: str, *, times: int = 1) -> list[int]:
    statement = text("INSERT INTO notes (body) VALUES (:body) RETURNING id")
    return [connection.execute(statement, {"body": body}).scalar_one() for _ in range(times)]


def _body(connection: Connection, note_id: int) -> str | None:
    body: str | None = connection.execute(
        text("SELECT body FROM notes WHERE id = :id"), {"id": note_id}
    ).scalar_one_or_none()
    return body


async def test_run_passes_the_arguments_after_the_connection(transactions: Transactions) -> None:
    """`unit.run(work, *args, **kwargs)` runs `work(connection, *args, **kwargs)`, in either mode."""
    ids = await UnitOfWork(transactions, "write").run(_add, "first", times=2)
    assert ids == [1, 2]
    assert await UnitOfWork(transactions, "read").run(_body, 2) == "first"


async def test_run_still_takes_a_unit_without_arguments(transactions: Transactions) -> None:
    """`unit.run(lambda connection: ...)` keeps working."""
    await UnitOfWork(transactions, "write").run(lambda connection: _add(connection, "only"))
    assert await UnitOfWork(transactions, "read").run(lambda connection: _body(connection, 1)) == "only"


async def test_a_unit_before_start_up_is_a_503_problem(sqlite_url: str) -> None:
    """A route asking for a unit before the database is open answers 503 problem+json, not a 500."""
    app = lastro.create_app(lastro.get_settings(DATABASE_URL=sqlite_url))

    @app.get("/notes/{note_id}")
    async def get_note(note_id: int, unit: lastro.ReadUnit) -> dict[str, str | None]:
        return {"body": await unit.run(_body, note_id)}

    transport = httpx.ASGITransport(app=app)  # no lifespan: the database is never opened
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/notes/1")
    assert response.status_code == 503
    assert response.json()["detail"] == "the database is not open yet"


SNIPPET = """
from sqlalchemy import Connection

import lastro


def get(connection: Connection, order_id: int, *, lock: bool = False) -> str:
    return str(order_id)


async def route(unit: lastro.ReadUnit, state: lastro.ServiceState) -> None:
    first: str = await unit.run(get, 1, lock=True)
    second: str = await state.transactions.write(get, order_id=2)
    third: str = await unit.run(lambda connection: get(connection, 3))
    await unit.run(get, "1")  # line 14: wrong type
    await unit.run(get)  # line 15: missing argument
    await unit.run(get, 1, locked=True)  # line 16: unknown keyword
    wrong: int = await unit.run(get, 1)  # line 17: wrong result type
"""


def test_mypy_checks_the_arguments_at_the_call_site(tmp_path: Path) -> None:
    """mypy --strict accepts right calls to `unit.run` and reports wrong arguments and result types."""
    snippet = tmp_path / "call_sites.py"
    snippet.write_text(textwrap.dedent(SNIPPET).lstrip())
    # The project's cache (make typecheck fills it) keeps this to about a second.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(ROOT / ".mypy_cache"), str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # By name, not by path: mypy's cache can report a file's errors under the path of an earlier run.
    lines = {int(line.split(":")[1]) for line in result.stdout.splitlines() if "call_sites.py:" in line}
    assert lines == {14, 15, 16, 17}, result.stdout
