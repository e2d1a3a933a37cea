"""Downgrades: every migration of the orders example goes down one step and up again, on SQLite and on
PostgreSQL, and leaves the schema exactly as it found it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from lastro import ConfigurationError
from lastro.db.engine import Database
from lastro.db.migrations import current_revision, downgrade, upgrade
from tests.support.databases import postgres_url_for, scratch_database

MIGRATIONS = Path(__file__).resolve().parents[2] / "examples" / "orders" / "migrations"


def revisions() -> list[str]:
    """The orders example's revisions, oldest first."""
    script = ScriptDirectory(str(MIGRATIONS))
    return [found.revision for found in reversed(list(script.walk_revisions()))]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database: a new SQLite file, or a throwaway PostgreSQL database dropped at the end."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'rollback.db'}")
        yield database
        database.dispose()
        return
    with scratch_database("lastro_rollback") as name:
        database = Database(postgres_url_for(name))
        try:
            yield database
        finally:
            database.dispose()


def schema(database: Database) -> dict[str, Any]:
    """What the inspector sees of every table: columns, indexes (with a partial index's condition), the
    primary key, foreign keys and unique constraints."""
    found: dict[str, Any] = {}
    with database.engine.connect() as connection:
        inspector = inspect(connection)
        for table in sorted(inspector.get_table_names()):
            found[table] = {
                "columns": [
                    (column["name"], str(column["type"]), column["nullable"], str(column.get("default")))
                    for column in inspector.get_columns(table)
                ],
                "indexes": sorted(
                    (
                        index["name"],
                        tuple(index["column_names"]),
                        bool(index["unique"]),
                        sorted((key, str(value)) for key, value in index.get("dialect_options", {}).items()),
                    )
                    for index in inspector.get_indexes(table)
                ),
                "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
                "foreign_keys": sorted(
                    (tuple(key["constrained_columns"]), key["referred_table"], tuple(key["referred_columns"]))
                    for key in inspector.get_foreign_keys(table)
                ),
                "unique": sorted(
                    tuple(unique["column_names"]) for unique in inspector.get_unique_constraints(table)
                ),
            }
    return found


def test_the_example_has_several_revisions() -> None:
    """The round trip below walks a real history, not an empty one."""
    assert len(revisions()) >= 4


def test_every_migration_round_trips(database: Database) -> None:
    """At each revision, down one step and up again gives back the schema the upgrade had made."""
    for revision in revisions():
        upgrade(database, MIGRATIONS, revision)
        before = schema(database)
        previous = downgrade(database, MIGRATIONS, "-1")
        assert previous[0] == revision
        assert upgrade(database, MIGRATIONS, revision) == (previous[1], revision)
        assert schema(database) == before, f"revision {revision} does not round-trip"


def test_downgrade_to_base_leaves_only_the_version_table(database: Database) -> None:
    """`base` undoes every migration: no table of the application is left."""
    upgrade(database, MIGRATIONS)
    assert downgrade(database, MIGRATIONS, "base")[1] is None
    assert set(schema(database)) <= {"alembic_version"}
    assert current_revision(database) is None


def test_downgrade_to_an_id_stops_there(database: Database) -> None:
    """A revision id undoes what came after it, and only that."""
    first, second, *_ = revisions()
    upgrade(database, MIGRATIONS)
    assert downgrade(database, MIGRATIONS, first)[1] == first
    assert current_revision(database) == first
    assert upgrade(database, MIGRATIONS, second)[1] == second


@pytest.mark.parametrize("revision", ["head", "heads", "+1", "0001+1", ""])
def test_a_target_above_is_refused_without_touching_the_schema(tmp_path: Path, revision: str) -> None:
    """`head` or `+N` is not a downgrade: refused naming the accepted forms, the schema unchanged."""
    database = Database(f"sqlite:///{tmp_path / 'refused.db'}")
    try:
        upgrade(database, MIGRATIONS, revisions()[1])
        with pytest.raises(ConfigurationError, match="-N"):
            downgrade(database, MIGRATIONS, revision)
        assert current_revision(database) == revisions()[1]
    finally:
        database.dispose()


@pytest.mark.parametrize("revision", ["nope", "-10"], ids=["unknown", "too-far"])
def test_an_unknown_or_unreachable_revision_is_a_configuration_error(tmp_path: Path, revision: str) -> None:
    """A revision not in the scripts, or more steps than there are, names MIGRATIONS_DIR."""
    database = Database(f"sqlite:///{tmp_path / 'unknown.db'}")
    try:
        upgrade(database, MIGRATIONS)
        with pytest.raises(ConfigurationError, match="MIGRATIONS_DIR"):
            downgrade(database, MIGRATIONS, revision)
        assert current_revision(database) == revisions()[-1]
    finally:
        database.dispose()
