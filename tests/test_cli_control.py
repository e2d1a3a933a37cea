"""The command line of the Windows paths: `--worker-start`, SQLITE_WRITE_LOCK refused before any worker,
and `lastro drain` / `lastro reload` without a service (with one: tests/serve/test_control.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support.servers import ORDERS, ROOT
from tests.test_cli import assert_one_error_line, invoke, isolate_serve_side_effects

__all__ = ["isolate_serve_side_effects"]  # the autouse fixture of tests/test_cli.py, applied here too


def test_help_lists_drain_and_reload() -> None:
    """`lastro --help` names drain and reload."""
    result = invoke("--help")
    assert "drain" in result.stdout
    assert "reload" in result.stdout


def test_serve_help_shows_worker_start() -> None:
    """`serve --help` shows --worker-start and the setting behind it."""
    help_text = " ".join(invoke("serve", "--help").stdout.split())
    assert "--worker-start" in help_text
    assert "$WORKER_START_METHOD or auto" in help_text


@pytest.mark.parametrize(("name", "value"), [("WORKER_START_METHOD", "fork"), ("SQLITE_WRITE_LOCK", "lockf")])
def test_a_misspelt_windows_setting_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """An unknown start method or lock backend: one line naming the setting, exit code 2."""
    monkeypatch.setenv(name, value)
    result = invoke("serve", ORDERS, "--app-dir", str(ROOT), "--factory")
    assert_one_error_line(result, name)
    assert result.exit_code == 2


def test_a_lock_backend_that_is_not_installed_stops_serve_before_any_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SQLITE_WRITE_LOCK=portalocker without portalocker: one line with the install command, exit code 2."""
    monkeypatch.setitem(sys.modules, "portalocker", None)  # what an environment without it looks like
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")
    monkeypatch.setenv("SQLITE_WRITE_LOCK", "portalocker")
    result = invoke("serve", ORDERS, "--app-dir", str(ROOT), "--factory", "--bind", "127.0.0.1:0")
    assert_one_error_line(result, "SQLITE_WRITE_LOCK=portalocker", "pip install 'portalocker'")
    assert result.exit_code == 2
    assert "lastro serving" not in result.output


def test_drain_off_without_a_service_succeeds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Ending a drain is harmless whether or not the service runs: the marker is gone afterwards."""
    monkeypatch.setenv("CONTROL_DIR", str(tmp_path))
    (tmp_path / "drain").write_text("")
    result = invoke("drain", "--off")
    assert result.exit_code == 0
    assert not (tmp_path / "drain").exists()


def test_reload_refuses_a_timeout_that_is_not_positive(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`lastro reload --timeout 0` is a usage error."""
    monkeypatch.setenv("CONTROL_DIR", str(tmp_path))
    result = invoke("reload", "--timeout", "0")
    assert result.exit_code == 2
    assert "--timeout" in result.stderr
