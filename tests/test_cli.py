"""The `lastro` command: help, one-line user errors, production refusal, `db upgrade` and `db current`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lastro._version import __version__
from lastro.cli import main
from lastro.settings import Settings
from tests.support.interpreter import fresh_python_prints
from tests.support.servers import ORDERS, ROOT

MIGRATIONS = str(ROOT / "examples/orders/migrations")
STRONG_KEY = "k" * 48
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/test"


@pytest.fixture(autouse=True)
def isolate_serve_side_effects(monkeypatch: pytest.MonkeyPatch) -> None:
    """`lastro serve` exports its options as settings and puts --app-dir on the import path: undo both."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in Settings.model_fields:
        monkeypatch.setenv(name, "")  # recorded as unset, so whatever serve exports is removed afterwards
        monkeypatch.delenv(name)
    monkeypatch.setenv("ENVIRONMENT", "development")  # as conftest: the tests that need production say so


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def assert_one_error_line(result: Result, *fragments: str) -> None:
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_the_commands() -> None:
    """`lastro --help` names serve and db."""
    result = invoke("--help")
    assert result.exit_code == 0
    assert "serve" in result.stdout
    assert "db" in result.stdout


def test_serve_loads_the_framework_before_forking_its_workers() -> None:
    """The supervisor of `lastro serve` imports lastro's public API (FastAPI, SQLAlchemy) before it forks,
    so that each forked worker imports only the application's modules."""
    code = (
        "import sys; from lastro.cli.serve import _preload; _preload(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'sqlalchemy'}))"
    )
    assert fresh_python_prints(code) == "['fastapi', 'sqlalchemy']"


def test_version_option_prints_the_version() -> None:
    """`lastro --version` prints the package version."""
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_serve_help_shows_each_setting_and_its_default() -> None:
    """`serve --help` shows the setting behind an option and its default."""
    result = invoke("serve", "--help")
    assert result.exit_code == 0
    help_text = " ".join(result.stdout.split())  # click wraps long lines
    assert "$WORKERS or auto" in help_text
    assert "$BIND or 127.0.0.1:8000" in help_text
    assert "$MAX_IN_FLIGHT or 256" in help_text
    assert "$ENVIRONMENT or production" in help_text


def test_target_without_colon_is_one_error_line() -> None:
    """A TARGET without MODULE:APP form is refused with one line and exit code 2."""
    result = invoke("serve", "notarget")
    assert_one_error_line(result, "MODULE:APP", "notarget")
    assert result.exit_code == 2


def test_unknown_module_is_one_error_line_before_any_worker_starts() -> None:
    """A TARGET whose module does not exist is refused at once with one line and exit code 2."""
    result = invoke("serve", "nosuchmodule:app", "--bind", "127.0.0.1:0")
    assert_one_error_line(result, "nosuchmodule")
    assert result.exit_code == 2
    assert "lastro serving" not in result.output


def test_unknown_submodule_of_a_package_is_one_error_line() -> None:
    """A missing module inside an existing package is refused the same way."""
    result = invoke("serve", "examples.orders.nosuchmodule:app", "--app-dir", str(ROOT))
    assert_one_error_line(result, "examples.orders.nosuchmodule")


def test_unknown_module_in_a_namespace_package_is_one_error_line(tmp_path: Path) -> None:
    """A package without __init__.py is searched too, and a missing module in it is one error line."""
    (tmp_path / "plainpkg" / "sub").mkdir(parents=True)
    (tmp_path / "plainpkg" / "sub" / "present.py").write_text("app = None\n")
    result = invoke("serve", "plainpkg.sub.absent:app", "--app-dir", str(tmp_path))
    assert_one_error_line(result, "plainpkg.sub.absent")


def test_malformed_option_value_is_one_error_line() -> None:
    """A malformed setting given as an option is one line naming the setting."""
    result = invoke("serve", ORDERS, "--app-dir", str(ROOT), "--workers", "many")
    assert_one_error_line(result, "WORKERS")
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({"DEBUG": "true", "SECRET_KEY": STRONG_KEY}, "DEBUG"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({}, "SECRET_KEY"),
        ({"SECRET_KEY": STRONG_KEY, "CORS_ORIGINS": '["*"]'}, "CORS_ORIGINS"),
    ],
    ids=["debug", "short-key", "missing-key", "wildcard-cors"],
)
def test_production_refuses_unsafe_settings(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], variable: str
) -> None:
    """ENVIRONMENT=production with an unsafe value exits non-zero with one line naming the variable."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    result = invoke("serve", ORDERS, "--app-dir", str(ROOT), "--factory")
    assert_one_error_line(result, variable)
    assert result.exit_code == 2


def test_serve_without_environment_is_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no ENVIRONMENT, serve refuses what production refuses: no SECRET_KEY is one line, exit 2."""
    monkeypatch.delenv("ENVIRONMENT")
    result = invoke("serve", ORDERS, "--app-dir", str(ROOT), "--factory")
    assert_one_error_line(result, "SECRET_KEY", "in production")
    assert result.exit_code == 2


def test_serve_environment_option_selects_development(monkeypatch: pytest.MonkeyPatch) -> None:
    """--environment development without ENVIRONMENT gets past the production refusals, to the database."""
    monkeypatch.delenv("ENVIRONMENT")
    monkeypatch.setenv("DATABASE_URL", "nonsense")  # stops serve after the settings, before any worker
    result = invoke("serve", ORDERS, "--app-dir", str(ROOT), "--factory", "--environment", "development")
    assert_one_error_line(result, "DATABASE_URL")


def test_a_misspelt_environment_is_one_error_line() -> None:
    """--environment prod is refused with one line naming ENVIRONMENT and the two values."""
    result = invoke("serve", ORDERS, "--app-dir", str(ROOT), "--environment", "prod")
    assert_one_error_line(result, "ENVIRONMENT", "'development' or 'production'")
    assert result.exit_code == 2


def test_unreachable_database_stops_serve_before_any_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` with a database that does not answer is one line naming DATABASE_URL, exit code 3."""
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)  # serve exports a generated key when none is set
    result = invoke("serve", ORDERS, "--app-dir", str(ROOT), "--factory")
    assert_one_error_line(result, "DATABASE_URL")
    assert result.exit_code == 3


def test_a_database_behind_the_migrations_stops_serve_before_any_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`serve` on a database its MIGRATIONS_DIR is ahead of: one line with the upgrade command, exit 3."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("MIGRATIONS_DIR", MIGRATIONS)
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    result = invoke("serve", ORDERS, "--app-dir", str(ROOT), "--factory")
    assert_one_error_line(result, "at revision none", f"lastro db upgrade --migrations {MIGRATIONS}")
    assert result.exit_code == 3


def test_db_upgrade_migrates_an_empty_sqlite_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`db upgrade` on a new SQLite file applies every migration and says so."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    result = invoke("db", "upgrade", "--migrations", MIGRATIONS)
    assert result.exit_code == 0, result.output
    assert "upgraded from an empty schema to revision 0004" in result.stdout


def test_db_upgrade_twice_changes_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A second `db upgrade` succeeds and reports the database is already at the head revision."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    first = invoke("db", "upgrade", "--migrations", MIGRATIONS)
    second = invoke("db", "upgrade", "--migrations", MIGRATIONS)
    assert (first.exit_code, second.exit_code) == (0, 0), second.output
    assert "already at revision 0004" in second.stdout


def test_db_current_before_and_after_upgrade(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`db current` shows no revision on a new database, then the head once upgraded."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    before = invoke("db", "current", "--migrations", MIGRATIONS)
    invoke("db", "upgrade", "--migrations", MIGRATIONS)
    after = invoke("db", "current", "--migrations", MIGRATIONS)
    assert before.exit_code == 0, before.output
    assert "revision none (newest available: 0004)" in before.stdout
    assert "revision 0004 (newest available: 0004)" in after.stdout


def test_db_upgrade_in_production_needs_no_secret_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no ENVIRONMENT and no SECRET_KEY (a release step's environment) `db upgrade` still migrates."""
    monkeypatch.delenv("ENVIRONMENT")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    result = invoke("db", "upgrade", "--migrations", MIGRATIONS)
    assert result.exit_code == 0, result.output
    assert "revision 0004" in result.stdout


def test_db_upgrade_reads_migrations_dir_from_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without --migrations, `db upgrade` uses MIGRATIONS_DIR."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("MIGRATIONS_DIR", MIGRATIONS)
    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "revision 0004" in result.stdout


def test_db_upgrade_without_a_migrations_directory_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A directory without env.py is one line naming MIGRATIONS_DIR, exit code 2."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    result = invoke("db", "upgrade", "--migrations", str(tmp_path / "nowhere"))
    assert_one_error_line(result, "MIGRATIONS_DIR")
    assert result.exit_code == 2


@pytest.mark.parametrize("command", ["upgrade", "current"])
def test_db_command_on_an_unreachable_database_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """`db upgrade` / `db current` against a database that does not answer: one line, exit code 3."""
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    result = invoke("db", command, "--migrations", MIGRATIONS)
    assert_one_error_line(result, "127.0.0.1:1")
    assert result.exit_code == 3


def test_db_command_with_a_malformed_setting_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed setting stops `db upgrade` with one line naming it."""
    monkeypatch.setenv("DB_POOL_TIMEOUT", "soon")
    result = invoke("db", "upgrade", "--migrations", MIGRATIONS)
    assert_one_error_line(result, "DB_POOL_TIMEOUT")
    assert result.exit_code == 2


def test_unknown_app_in_an_existing_module_is_a_usage_error(tmp_path: Path) -> None:
    """A TARGET whose module exists but defines no APP is one line and exit code 2, not a worker failure."""
    (tmp_path / "myapp.py").write_text("app = None\n")
    result = invoke("serve", "myapp:ap", "--app-dir", str(tmp_path), "--bind", "127.0.0.1:0")
    assert_one_error_line(result, "myapp", "'ap'")
    assert result.exit_code == 2
    assert "lastro serving" not in result.output


def test_checking_the_target_never_imports_the_application(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The supervisor finds APP in the source: the application's module-level code never runs in it."""
    marker = tmp_path / "imported"
    (tmp_path / "sideeffect.py").write_text(f"open({str(marker)!r}, 'w').close()\napp = None\n")
    monkeypatch.setenv("DATABASE_URL", "nonsense")  # stops serve after the target check, before any worker
    result = invoke("serve", "sideeffect:app", "--app-dir", str(tmp_path))
    assert_one_error_line(result, "DATABASE_URL")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("pragmas", "fragment"),
    [("notjson", "SQLITE_PRAGMAS must be valid JSON"), ('{"cache size": 1}', "SQLITE_PRAGMAS must map")],
    ids=["not-json", "not-a-pragma"],
)
def test_bad_sqlite_pragmas_stop_serve_before_any_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pragmas: str, fragment: str
) -> None:
    """SQLITE_PRAGMAS that are not JSON, or not plain pragmas, are one line and exit code 2."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")
    monkeypatch.setenv("SQLITE_PRAGMAS", pragmas)
    result = invoke("serve", ORDERS, "--app-dir", str(ROOT), "--factory", "--bind", "127.0.0.1:0")
    assert_one_error_line(result, fragment)
    assert result.exit_code == 2
    assert "lastro serving" not in result.output


@pytest.mark.parametrize("url", ["nonsense", "mysql://user@127.0.0.1/db"])
def test_unusable_database_url_stops_serve_with_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """A DATABASE_URL that is not a SQLite or PostgreSQL URL is a usage error, not an outage."""
    monkeypatch.setenv("DATABASE_URL", url)
    result = invoke("serve", ORDERS, "--app-dir", str(ROOT), "--factory")
    assert_one_error_line(result, "DATABASE_URL", url)
    assert result.exit_code == 2


def test_missing_postgres_driver_stops_serve_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` on PostgreSQL without psycopg installed: one line with the install command, exit code 2."""
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an environment without psycopg looks like
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    result = invoke("serve", ORDERS, "--app-dir", str(ROOT), "--factory")
    assert_one_error_line(result, 'pip install -e ".[postgres]"')
    assert result.exit_code == 2


def test_tracing_without_its_extra_stops_serve_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` with TRACING=otlp and no OpenTelemetry SDK installed: one line naming TRACING and the
    install command, exit code 2, before any worker."""
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)  # what an environment without it looks like
    monkeypatch.setenv("TRACING", "otlp")
    result = invoke("serve", ORDERS, "--app-dir", str(ROOT), "--factory")
    assert_one_error_line(result, "TRACING=otlp", "pip install 'lastro[tracing]'")
    assert result.exit_code == 2


def test_a_malformed_bind_names_its_value_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """BIND=bogus is one line that names BIND and quotes the value once."""
    monkeypatch.setenv("BIND", "bogus")
    result = invoke("serve", ORDERS, "--app-dir", str(ROOT), "--factory")
    assert_one_error_line(result, "BIND must be HOST:PORT")
    assert result.stderr.count("bogus") == 1
    assert result.stderr.count("BIND") == 1
    assert result.exit_code == 2
