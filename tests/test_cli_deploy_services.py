"""`lastro deploy systemd|nssm|nginx`: the files written where the contract says, refusals on one line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lastro.cli import main
from tests.support.cli import assert_one_error_line

ORDERS = "examples.orders.app:create_app"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["deploy", *args])


def test_deploy_lists_the_service_managers() -> None:
    """`lastro deploy --help` lists systemd, nssm and nginx."""
    result = invoke("--help")
    assert result.exit_code == 0
    for name in ("systemd", "nssm", "nginx"):
        assert name in result.stdout


def test_systemd_writes_the_unit_and_a_private_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/systemd/SERVICE_NAME.service and .env (mode 600), the unit running the given application."""
    monkeypatch.setenv("SERVICE_NAME", "orders")
    result = invoke("systemd", ORDERS, "--factory")
    assert result.exit_code == 0, result.output
    directory = tmp_path / "deploy" / "systemd"
    assert sorted(path.name for path in directory.iterdir()) == ["orders.env", "orders.service"]
    assert stat.S_IMODE((directory / "orders.env").stat().st_mode) == 0o600
    assert f"lastro serve {ORDERS} --factory\n" in (directory / "orders.service").read_text()
    assert "wrote deploy/systemd/orders.service" in result.stdout


def test_systemd_options_reach_the_unit(tmp_path: Path) -> None:
    """--output, --directory, --user, --env-file and --writable shape the unit."""
    result = invoke(
        "systemd",
        ORDERS,
        "--output",
        "ops",
        "--directory",
        "/opt/app",
        "--user",
        "app",
        "--env-file",
        "/etc/app.env",
        "--writable",
        "/var/lib/app/images",
    )
    assert result.exit_code == 0, result.output
    unit = (tmp_path / "ops" / "lastro.service").read_text()
    for line in (
        "WorkingDirectory=/opt/app",
        "ExecStart=/opt/app/.venv/bin/lastro serve",
        "User=app",
        "EnvironmentFile=/etc/app.env",
        "ReadWritePaths=/opt/app/var /var/lib/app/images",
    ):
        assert line in unit


def test_nssm_writes_deploy_ps1(tmp_path: Path) -> None:
    """deploy/nssm/deploy.ps1, serving the given application."""
    result = invoke("nssm", ORDERS, "--factory", "--app-dir", "src")
    assert result.exit_code == 0, result.output
    script = (tmp_path / "deploy" / "nssm" / "deploy.ps1").read_text()
    assert f"'serve {ORDERS} --factory --app-dir src'" in script
    assert "$UpgradeArguments = @('db', 'upgrade', '--app-dir', 'src')" in script
    assert "-Action install -Workers 2 -Port 8000" in result.stdout


def test_nginx_writes_the_site_and_warns_when_nginx_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/nginx/SERVICE_NAME.conf; without TRUSTED_PROXIES a warning on stderr names the fix."""
    monkeypatch.setenv("SERVICE_NAME", "orders")
    result = invoke("nginx", "--upstream", "127.0.0.1:8001", "--upstream", "127.0.0.1:8002")
    assert result.exit_code == 0, result.output
    conf = (tmp_path / "deploy" / "nginx" / "orders.conf").read_text()
    assert "server 127.0.0.1:8002 max_fails" in conf
    assert "Warning: TRUSTED_PROXIES does not include 127.0.0.1" in result.stderr
    assert "set TRUSTED_PROXIES=127.0.0.1" in result.stderr


def test_nginx_trusted_gives_no_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """With nginx's address in TRUSTED_PROXIES nothing is written to stderr."""
    monkeypatch.setenv("TRUSTED_PROXIES", "127.0.0.1")
    result = invoke("nginx")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "written"),
    [
        (("systemd", ORDERS), "deploy/systemd/lastro.service"),
        (("nssm", ORDERS), "deploy/nssm/deploy.ps1"),
        (("nginx",), "deploy/nginx/lastro.conf"),
    ],
)
def test_existing_files_are_kept_without_force(tmp_path: Path, args: tuple[str, ...], written: str) -> None:
    """A second run refuses with one `Error:` line, exit code 1; --force writes again."""
    assert invoke(*args).exit_code == 0
    (tmp_path / written).write_text("# edited by hand\n")
    assert_one_error_line(invoke(*args), 1, written, "--force")
    assert (tmp_path / written).read_text() == "# edited by hand\n"
    assert invoke(*args, "--force").exit_code == 0
    assert (tmp_path / written).read_text() != "# edited by hand\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("systemd", "app.py"), "MODULE:APP"),
        (("nssm", "app.py"), "MODULE:APP"),
        (("systemd", ORDERS, "--directory", "srv/app"), "--directory must be an absolute path"),
        (("nssm", ORDERS, "--directory", "/srv/app"), "--directory must be an absolute Windows path"),
        (("nginx", "--upstream", "http://10.0.0.5:8000"), "--upstream must be HOST:PORT"),
        (("nginx", "--proxy-address", "nginx.local"), "--proxy-address must be an IP address"),
        (("nginx", "--listen", "80;evil"), "--listen must be PORT or HOST:PORT"),
    ],
)
def test_a_bad_option_is_one_error_line_with_exit_code_2(
    tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    """A malformed application or option is one `Error:` line naming it, exit code 2, and no file."""
    assert_one_error_line(invoke(*args), 2, fragment)
    assert not (tmp_path / "deploy").exists()


def test_a_bad_setting_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A SERVICE_NAME that cannot name a unit is one `Error:` line naming it, exit code 2."""
    monkeypatch.setenv("SERVICE_NAME", "my service")
    assert_one_error_line(invoke("systemd", ORDERS), 2, "SERVICE_NAME names the service's unit")
