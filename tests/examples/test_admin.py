"""`python -m examples.orders.admin create-admin`: the first administrator of a production service.

The command runs as a subprocess against a migrated SQLite database, with the environment the service gets;
the administrator it makes then logs in to the real service, started by `lastro serve` in production.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.examples.conftest import SECRET_KEY
from tests.support.servers import ROOT, migrate, serve, serve_env

PASSWORD = "correct horse battery staple"
COMMAND = [sys.executable, "-m", "examples.orders.admin", "create-admin"]


def create_admin(
    env: dict[str, str], *args: str, stdin: str = f"{PASSWORD}\n"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], input=stdin, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def query(env: dict[str, str], statement: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///"))
    try:
        return connection.execute(statement).fetchall()
    finally:
        connection.close()


def users(env: dict[str, str]) -> list[tuple[object, ...]]:
    """(username, tenant, is_admin) of every user."""
    return query(
        env,
        "SELECT users.username, tenants.name, users.is_admin FROM users"
        " JOIN tenants ON tenants.id = users.tenant_id ORDER BY users.username",
    )


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty orders database, copied by each test that needs one."""
    directory = tmp_path_factory.mktemp("admin")
    migrate(serve_env(directory))
    return directory / "service.db"


@pytest.fixture
def env(tmp_path: Path, migrated: Path) -> dict[str, str]:
    """The environment of a production orders service whose SQLite database is migrated and empty."""
    shutil.copyfile(migrated, tmp_path / "service.db")
    return serve_env(tmp_path, ENVIRONMENT="production", SECRET_KEY=SECRET_KEY, WORKERS="1")


def test_the_admin_created_by_the_command_logs_in_to_the_production_service(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """An administrator made from stdin logs in to `lastro serve` in production and may create a tenant."""
    created = create_admin(env, "--tenant", "acme", "--username", "boss")
    assert created.returncode == 0, created.stderr
    assert "created administrator 'boss' of tenant 'acme'" in created.stdout
    settings = {key: env[key] for key in ("ENVIRONMENT", "SECRET_KEY", "WORKERS", "DATABASE_URL")}
    with serve(tmp_path, **settings) as server:
        login = httpx.post(
            f"{server.url}/api/auth/token", data={"username": "boss", "password": PASSWORD}, timeout=20
        )
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        tenant = httpx.post(
            f"{server.url}/api/admin/tenants",
            json={"name": "globex"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=20,
        )
        assert tenant.status_code == 201, tenant.text
        default = httpx.post(
            f"{server.url}/api/auth/token", data={"username": "admin", "password": "admin"}, timeout=20
        )
        assert default.status_code == 401  # production made no admin/admin of its own


def test_the_password_may_come_from_the_environment(env: dict[str, str]) -> None:
    """With ORDERS_ADMIN_PASSWORD set, standard input is not read; the stored hash is Argon2id."""
    result = create_admin(
        env | {"ORDERS_ADMIN_PASSWORD": PASSWORD}, "--tenant", "acme", "--username", "boss", stdin=""
    )
    assert result.returncode == 0, result.stderr
    assert users(env) == [("boss", "acme", 1)]
    [(stored,)] = query(env, "SELECT password_hash FROM users")
    assert isinstance(stored, str)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_a_second_admin_joins_an_existing_tenant(env: dict[str, str]) -> None:
    """The tenant is created once and reused by the next administrator of the same name."""
    assert create_admin(env, "--tenant", "acme", "--username", "boss").returncode == 0
    assert create_admin(env, "--tenant", "acme", "--username", "deputy").returncode == 0
    assert users(env) == [("boss", "acme", 1), ("deputy", "acme", 1)]


def test_an_existing_user_is_refused_with_exit_code_1(env: dict[str, str]) -> None:
    """Creating the same username again is one Error line, exit 1, and changes nothing."""
    assert create_admin(env, "--tenant", "acme", "--username", "boss").returncode == 0
    again = create_admin(env, "--tenant", "other", "--username", "boss", stdin="another password\n")
    assert_one_error_line(again, 1, "'boss' exists")
    assert users(env) == [("boss", "acme", 1)]


@pytest.mark.parametrize("stdin", ["", "\n", "   \n"], ids=["closed", "empty-line", "blank"])
def test_an_empty_password_is_refused(env: dict[str, str], stdin: str) -> None:
    """No password on stdin (and none in the environment) is one Error line, exit 2, and no user."""
    result = create_admin(env, "--tenant", "acme", "--username", "boss", stdin=stdin)
    assert_one_error_line(result, 2, "password is empty", "ORDERS_ADMIN_PASSWORD")
    assert users(env) == []


def test_a_short_password_is_refused_without_echoing_it(env: dict[str, str]) -> None:
    """A password under the API's 8 characters is refused like the API refuses it, and not printed."""
    result = create_admin(env, "--tenant", "acme", "--username", "boss", stdin="hunter2\n")
    assert_one_error_line(result, 2, "password", "8 characters")
    assert "hunter2" not in result.stderr + result.stdout
    assert users(env) == []


def test_the_password_is_not_accepted_on_the_command_line(env: dict[str, str]) -> None:
    """There is no --password option: argv is visible to every user of the machine."""
    result = create_admin(env, "--tenant", "acme", "--username", "boss", "--password", PASSWORD)
    assert result.returncode == 2
    assert "No such option" in result.stderr
    assert users(env) == []


def test_a_database_that_is_not_migrated_is_refused_with_the_upgrade_command(tmp_path: Path) -> None:
    """On a database without the schema: one Error line with the `lastro db upgrade` command, exit 3."""
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    env = serve_env(tmp_path, DATABASE_URL=f"sqlite:///{empty}")
    result = create_admin(env, "--tenant", "acme", "--username", "boss")
    assert_one_error_line(result, 3, "lastro db upgrade --migrations")


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    """A DATABASE_URL naming no file is refused, exit 3, and no empty database appears."""
    missing = tmp_path / "missing.db"
    env = serve_env(tmp_path, DATABASE_URL=f"sqlite:///{missing}")
    result = create_admin(env, "--tenant", "acme", "--username", "boss")
    assert_one_error_line(result, 3, str(missing), "DATABASE_URL")
    assert not missing.exists()
