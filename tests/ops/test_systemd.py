"""The systemd unit and its environment file: verified by systemd itself, and true to `lastro serve`."""

from __future__ import annotations

import configparser
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

from lastro.errors import ConfigurationError
from lastro.ops.rendering import write_files
from lastro.ops.service import ServeCommand
from lastro.ops.systemd import SystemdLayout, database_directory, systemd_files
from lastro.settings import Settings, load_settings

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)"
)
LASTRO = str(Path(sys.executable).with_name("lastro"))
ORDERS = ServeCommand("examples.orders.app:create_app", factory=True)


def layout(directory: str = "/srv/orders/current", **given: str) -> SystemdLayout:
    return SystemdLayout.default("orders", directory=directory, **given)


def unit_of(settings: Settings, **given: str) -> configparser.ConfigParser:
    """The unit as sections and keys (systemd's syntax is close enough to INI for reading it)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(systemd_files(settings, ORDERS, layout(**given))[f"{settings.SERVICE_NAME}.service"])
    return parser


@needs_systemd_analyze
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` passes on the unit, with no warning, when its ExecStart binary exists."""
    assert SYSTEMD_ANALYZE is not None
    settings = load_settings(SERVICE_NAME="orders", DATABASE_URL="sqlite:///./var/orders.db")
    files = systemd_files(settings, ORDERS, layout(str(tmp_path), lastro=LASTRO))
    write_files(tmp_path, files)
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(tmp_path / "orders.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


@needs_systemd_analyze
def test_systemd_analyze_catches_a_missing_binary(tmp_path: Path) -> None:
    """The check is real: a unit whose lastro does not exist fails `systemd-analyze verify`."""
    assert SYSTEMD_ANALYZE is not None
    files = systemd_files(load_settings(SERVICE_NAME="orders"), ORDERS, layout(str(tmp_path)))
    write_files(tmp_path, files)
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(tmp_path / "orders.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "is not executable" in result.stderr


def test_the_unit_runs_lastro_serve_with_the_application() -> None:
    """ExecStart is `lastro serve MODULE:APP --factory` from the release's venv; migrations run before."""
    service = unit_of(load_settings(SERVICE_NAME="orders"))["Service"]
    assert service["ExecStart"] == (
        "/srv/orders/current/.venv/bin/lastro serve examples.orders.app:create_app --factory"
    )
    assert service["ExecStartPre"] == "/srv/orders/current/.venv/bin/lastro db upgrade"
    assert service["WorkingDirectory"] == "/srv/orders/current"
    assert service["EnvironmentFile"] == "/etc/lastro/orders.env"
    assert service["User"] == "orders"


def test_app_dir_is_passed_on_as_serve_takes_it() -> None:
    """--app-dir given to deploy reaches `lastro serve` and `lastro db upgrade`."""
    command = ServeCommand("app.main:app", app_dir="src")
    unit = systemd_files(load_settings(SERVICE_NAME="orders"), command, layout())["orders.service"]
    assert "lastro serve app.main:app --app-dir src\n" in unit
    assert "lastro db upgrade --app-dir src\n" in unit


def test_stop_is_sigterm_to_the_supervisor_then_sigkill_after_graceful_timeout() -> None:
    """KillMode=mixed, SIGTERM, and TimeoutStopSec past GRACEFUL_TIMEOUT (rounded up) by the margin."""
    service = unit_of(load_settings(GRACEFUL_TIMEOUT="42.5"))["Service"]
    assert service["KillMode"] == "mixed"
    assert service["KillSignal"] == "SIGTERM"
    assert service["TimeoutStopSec"] == str(43 + 15)


def test_reload_is_sighup_and_restart_is_on_failure_but_not_for_a_refused_setting() -> None:
    """ExecReload sends SIGHUP to the supervisor; exit code 2 (a refused setting) is not restarted."""
    service = unit_of(load_settings())["Service"]
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"


def test_open_files_follow_max_connections() -> None:
    """LimitNOFILE is one worker's MAX_CONNECTIONS plus headroom (the limit is per process)."""
    assert unit_of(load_settings(MAX_CONNECTIONS="5000"))["Service"]["LimitNOFILE"] == str(5000 + 1024)


def test_the_sqlite_directory_is_writable_under_a_read_only_system() -> None:
    """ProtectSystem=strict; ReadWritePaths holds the SQLite database's directory and the --writable ones."""
    settings = load_settings(DATABASE_URL="sqlite:///./var/orders.db")
    service = unit_of(settings, writable=("/srv/orders/images",))["Service"]  # type: ignore[arg-type]
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/srv/orders/current/var /srv/orders/images"


@pytest.mark.parametrize(
    ("url", "directory"),
    [
        ("sqlite:///./var/app.db", "/srv/app/var"),
        ("sqlite:///var/app.db", "/srv/app/var"),
        ("sqlite:////data/app.db?mode=rwc", "/data"),
        ("sqlite+pysqlite:///../shared/app.db", "/srv/shared"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql+psycopg://u@db/app", None),
    ],
)
def test_database_directory(url: str, directory: str | None) -> None:
    """The SQLite file's directory, relative ones read from the working directory; None otherwise."""
    assert database_directory(url, "/srv/app") == directory


def test_without_sqlite_no_directory_is_writable() -> None:
    """On PostgreSQL, no ReadWritePaths line unless --writable gives one."""
    settings = load_settings(DATABASE_URL="postgresql+psycopg://orders@127.0.0.1/orders")
    assert "ReadWritePaths" not in unit_of(settings)["Service"]


def test_the_env_file_carries_the_settings_and_a_refused_key() -> None:
    """The environment file is production with the settings found, and its SECRET_KEY is a placeholder
    that production refuses, so the service cannot start with it."""
    settings = load_settings(SERVICE_NAME="orders", WORKERS="3", TRUSTED_PROXIES="127.0.0.1")
    text = systemd_files(settings, ORDERS, layout())["orders.env"]
    values = dotenv_values(stream=io.StringIO(text))
    assert values["ENVIRONMENT"] == "production"
    assert values["WORKERS"] == "3"
    assert values["TRUSTED_PROXIES"] == "127.0.0.1"
    assert "secrets.token_urlsafe(48)" in text
    read = load_settings(**{key: value for key, value in values.items() if value is not None})
    assert any(problem.startswith("SECRET_KEY is a placeholder") for problem in read.problems())


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ({"directory": "srv/orders"}, "--directory must be an absolute path"),
        ({"directory": "/srv/my orders"}, "--directory must be an absolute path"),
        ({"lastro": "/opt/%i/lastro"}, "--lastro must be an absolute path"),
        ({"user": "Not A User"}, "--user must be a system user name"),
    ],
)
def test_a_path_systemd_would_misread_is_refused(given: dict[str, str], fragment: str) -> None:
    """Relative paths, spaces and `%` specifiers are refused with the option's name and the form."""
    with pytest.raises(ConfigurationError, match=fragment):
        SystemdLayout.default("orders", **given)


def test_a_bad_application_is_refused() -> None:
    """An application that is not MODULE:APP is refused naming the form."""
    with pytest.raises(ConfigurationError, match="MODULE:APP"):
        ServeCommand("examples/orders/app.py")


def test_a_writable_directory_inside_another_is_not_repeated() -> None:
    """A --writable directory under the database's is covered by it: ReadWritePaths lists the outer one."""
    settings = load_settings(DATABASE_URL="sqlite:////srv/orders/var/orders.db")
    service = unit_of(settings, writable=("/srv/orders/var/images", "/srv/uploads"))["Service"]  # type: ignore[arg-type]
    assert service["ReadWritePaths"] == "/srv/orders/var /srv/uploads"
