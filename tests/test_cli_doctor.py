"""`lastro doctor` as a command: the real one on this machine (a subprocess), text and JSON, and its exit
codes."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from lastro.cli import main
from lastro.settings import Settings
from tests.support.servers import LASTRO, ROOT

SCHEMA = {
    "type": "object",
    "required": ["findings", "summary", "checks", "ok"],
    "properties": {
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "severity", "message", "fix"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": r"^lastro\.[EWI]\d{3}$"},
                    "severity": {"enum": ["error", "warning", "info"]},
                    "message": {"type": "string", "minLength": 1},
                    "fix": {"type": "string", "minLength": 1},
                },
            },
        },
        "summary": {
            "type": "object",
            "required": ["error", "warning", "info"],
            "additionalProperties": {"type": "integer", "minimum": 0},
        },
        "checks": {"type": "array", "items": {"type": "string"}, "minItems": 10},
        "ok": {"type": "boolean"},
    },
}
UNIT = "[Service]\nExecStart=/usr/bin/lastro serve app:app\nTimeoutStopSec=45\n"


def doctor(directory: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """The installed `lastro doctor` on this worktree's code, run in `directory` with only `settings`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LASTRO_", "PYTEST_")) and key not in Settings.model_fields
    }
    env.update({"PYTHONPATH": str(ROOT), **settings})
    return subprocess.run(
        [LASTRO, "doctor", *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def deploy_env(directory: Path) -> dict[str, str]:
    """A production service in `directory`: its SQLite file, a key, tokens, hosts and backups, a unit."""
    (directory / "deploy" / "systemd").mkdir(parents=True)
    (directory / "deploy" / "systemd" / "lastro.service").write_text(UNIT)
    return {
        "ENVIRONMENT": "production",
        "DATABASE_URL": f"sqlite:///{directory / 'var' / 'app.db'}",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "HEALTH_TOKEN": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "api.example.com",
        "WORKERS": "1",
        "MAX_CONNECTIONS": "256",
        "BACKUP_EVERY": "86400",
        "DISK_MIN_FREE_BYTES": "0",
        "SQLITE_WAL_MAX_BYTES": "0",
    }


def test_the_text_report_on_this_machine(tmp_path: Path) -> None:
    """`lastro doctor` runs here: the count line first, exit code 1 exactly when it counts an error."""
    result = doctor(tmp_path)
    assert result.returncode in (0, 1), result.stderr
    head = result.stdout.splitlines()[0]
    assert head.startswith("lastro doctor (lastro): ")
    assert (result.returncode == 1) == (not head.split(": ")[1].startswith("0 errors"))


def test_the_json_report_on_this_machine(tmp_path: Path) -> None:
    """`lastro doctor --json` is one JSON document of the documented shape; ok agrees with the exit code."""
    result = doctor(tmp_path, "--json")
    assert result.returncode in (0, 1), result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["ok"] == (result.returncode == 0)
    assert document["summary"]["error"] == sum(f["severity"] == "error" for f in document["findings"])


def test_a_sound_production_setup_exits_zero(tmp_path: Path) -> None:
    """Settings with nothing unsafe and a unit that waits long enough: exit code 0, no error."""
    result = doctor(tmp_path, "--json", **deploy_env(tmp_path))
    document = json.loads(result.stdout)
    assert result.returncode == 0, document
    assert document["summary"]["error"] == 0


def test_a_bad_production_setup_exits_one(tmp_path: Path) -> None:
    """A short SECRET_KEY, DEBUG on and a unit that kills before GRACEFUL_TIMEOUT: exit code 1, each named."""
    env = deploy_env(tmp_path) | {"SECRET_KEY": "short", "DEBUG": "true", "GRACEFUL_TIMEOUT": "60"}
    result = doctor(tmp_path, **env)
    assert result.returncode == 1, result.stdout
    errors = result.stdout.split("Errors:")[1].split("Warnings:")[0]
    assert "lastro.E001 SECRET_KEY" in errors
    assert "lastro.E001 DEBUG=true" in errors
    assert "lastro.E070" in errors
    assert result.stderr == ""


def test_app_dir_and_deploy_dir_are_where_the_service_runs(tmp_path: Path) -> None:
    """Run from elsewhere: --app-dir's .env is read, and --deploy-dir is found from it."""
    service = tmp_path / "service"
    service.mkdir()
    env = deploy_env(service)
    (service / ".env").write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    (service / "deploy" / "systemd" / "lastro.service").write_text("[Service]\nTimeoutStopSec=5\n")
    result = doctor(tmp_path, "--json", "--app-dir", str(service), "--deploy-dir", "deploy")
    found = json.loads(result.stdout)["findings"]
    assert [finding["id"] for finding in found if finding["severity"] != "info"] == ["lastro.E070"], found


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [({"WORKERS": "many"}, "WORKERS"), ({"DATABASE_URL": "nonsense"}, "DATABASE_URL")],
)
def test_settings_that_do_not_parse_are_one_error_line(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], fragment: str
) -> None:
    """A malformed setting: one `Error:` line naming it, exit code 2, no report."""
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert fragment in lines[0]


def test_a_missing_app_dir_is_a_usage_error(tmp_path: Path) -> None:
    """--app-dir that does not exist: click's usage error, exit code 2."""
    result = CliRunner().invoke(main, ["doctor", "--app-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "--app-dir" in result.stderr
