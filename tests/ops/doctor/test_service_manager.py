"""GRACEFUL_TIMEOUT against the service manager's stop timeout: systemd, docker compose, NSSM, systemctl."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ops.doctor.conftest import Doctor

GRACEFUL = {"GRACEFUL_TIMEOUT": "30"}
COMPOSE = """\
services:
  app:
    build: .
    command: ["lastro", "serve", "app:app"]
    stop_grace_period: {grace}
  db:
    image: postgres:17
    stop_grace_period: 1s
"""
NSSM = """\
param([int]$Workers = 2, [int]$Port = 8000, [int]$StopTimeoutMs = {stop})
nssm install $Name $Python
nssm set $Name AppStopMethodConsole $StopTimeoutMs
"""


def write(doctor: Doctor, relative: str, text: str) -> Path:
    path = doctor.deploy_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def unit(doctor: Doctor, lines: str) -> Path:
    return write(doctor, "systemd/lastro.service", f"[Unit]\nDescription=x\n\n[Service]\n{lines}\n")


@pytest.mark.parametrize("value", ["45", "45s", "1min", "1min 30s", "infinity", "2m"])
def test_a_unit_that_waits_long_enough_is_fine(doctor: Doctor, value: str) -> None:
    """TimeoutStopSec past GRACEFUL_TIMEOUT + 5 s, in any of systemd's spellings: nothing."""
    unit(doctor, f"TimeoutStopSec={value}")
    assert doctor.findings(GRACEFUL) == []


def test_a_unit_that_kills_before_the_graceful_timeout_is_an_error(doctor: Doctor) -> None:
    """TimeoutStopSec=20 against GRACEFUL_TIMEOUT=30: lastro.E070 names the file and the fix."""
    path = unit(doctor, "TimeoutStopSec=20s")
    finding = doctor.one("lastro.E070", GRACEFUL)
    assert str(path) in finding.message
    assert "TimeoutStopSec=20s" in finding.message
    assert "at least 35 s" in finding.fix


def test_a_unit_with_too_little_margin_is_a_warning(doctor: Doctor) -> None:
    """33 s against 30: the shutdown after the graceful wait may not fit, lastro.W071."""
    unit(doctor, "TimeoutStopSec=33")
    assert doctor.ids(GRACEFUL) == ["lastro.W071"]


def test_timeout_sec_and_the_last_assignment_count(doctor: Doctor) -> None:
    """TimeoutSec= sets the stop timeout too, and a later line wins, as in systemd."""
    unit(doctor, "TimeoutStopSec=90\nTimeoutSec=10")
    assert doctor.ids(GRACEFUL) == ["lastro.E070"]


def test_a_unit_without_a_timeout_gets_systemds_default(doctor: Doctor) -> None:
    """Unset is 90 s: fine for 30 s, an error for GRACEFUL_TIMEOUT=120."""
    unit(doctor, "ExecStart=/usr/bin/lastro serve app:app\n# TimeoutStopSec=1")
    assert doctor.findings(GRACEFUL) == []
    assert "systemd's default" in doctor.one("lastro.E070", {"GRACEFUL_TIMEOUT": "120"}).message


def test_a_timeout_outside_the_service_section_is_ignored(doctor: Doctor) -> None:
    """`TimeoutStopSec` under [Install] is no stop timeout: the default applies."""
    write(doctor, "systemd/lastro.service", "[Service]\nExecStart=x\n[Install]\nTimeoutStopSec=1\n")
    assert doctor.findings(GRACEFUL) == []


def test_an_unreadable_timeout_is_a_warning(doctor: Doctor) -> None:
    """TimeoutStopSec=soon is not a time span: lastro.W072, never a guess."""
    unit(doctor, "TimeoutStopSec=soon")
    assert "TimeoutStopSec=soon" in doctor.one("lastro.W072", GRACEFUL).message


@pytest.mark.parametrize(("grace", "expected"), [("1m30s", []), ('"45s"', []), ("20s", ["lastro.E070"])])
def test_compose_stop_grace_period_of_the_service(doctor: Doctor, grace: str, expected: list[str]) -> None:
    """The lastro service's stop_grace_period counts; the database's 1 s does not."""
    write(doctor, "docker/compose.yaml", COMPOSE.format(grace=grace))
    assert doctor.ids(GRACEFUL) == expected


def test_compose_without_a_grace_period_gets_dockers_ten_seconds(doctor: Doctor) -> None:
    """No stop_grace_period: docker waits 10 s, an error against 30."""
    write(doctor, "docker/compose.yaml", "services:\n  lastro:\n    image: app\n")
    finding = doctor.one("lastro.E070", GRACEFUL)
    assert "(service lastro)" in finding.message
    assert "docker's default" in finding.message


def test_a_one_shot_migration_step_is_not_the_service(doctor: Doctor) -> None:
    """`migrate` runs `lastro db upgrade` once (`restart: "no"`, no grace period): only `app` counts."""
    write(
        doctor,
        "docker/compose.yaml",
        "services:\n"
        '  migrate:\n    image: orders:latest\n    command: ["lastro", "db", "upgrade"]\n    restart: "no"\n'
        "  app:\n    image: orders:latest\n    restart: unless-stopped\n    stop_grace_period: 45s\n",
    )
    assert doctor.findings(GRACEFUL) == []


def test_compose_databases_are_not_the_service_even_named_lastro(doctor: Doctor) -> None:
    """A registry-qualified postgres image whose database is called lastro is not the service: its 1 s
    grace period does not count, the app's 45 s does."""
    write(
        doctor,
        "docker/compose.yaml",
        "services:\n"
        "  api:\n    build: .\n    stop_grace_period: 45s\n"
        "  db:\n    image: docker.io/library/postgres:17-alpine\n"
        "    environment:\n      POSTGRES_DB: lastro\n    stop_grace_period: 1s\n",
    )
    assert doctor.findings(GRACEFUL) == []


@pytest.mark.parametrize(
    "text", ["services: [unclosed", "just a string\n", "services:\n  app:\n    stop_grace_period: soon\n"]
)
def test_a_compose_file_that_does_not_parse_is_a_warning(doctor: Doctor, text: str) -> None:
    """Garbage YAML, no services, or a grace period that is no duration: lastro.W072."""
    write(doctor, "docker/compose.yaml", text)
    assert doctor.ids(GRACEFUL) == ["lastro.W072"]


@pytest.mark.parametrize(("stop", "expected"), [("45000", []), ("20000", ["lastro.E070"])])
def test_nssm_stop_method_through_a_parameter(doctor: Doctor, stop: str, expected: list[str]) -> None:
    """AppStopMethodConsole set from a script parameter: its default value in milliseconds counts."""
    write(doctor, "nssm/deploy.ps1", NSSM.format(stop=stop))
    assert doctor.ids(GRACEFUL) == expected


def test_nssm_stop_method_through_a_wrapper_and_a_variable(doctor: Doctor) -> None:
    """`$StopMilliseconds = 45000` then a wrapper function calling nssm with it: 45 s, fine."""
    script = (
        "$StopMilliseconds = 45000\n"
        "function Invoke-Nssm { & nssm.exe @args }\n"
        "Invoke-Nssm set $ServiceName AppStopMethodConsole $StopMilliseconds | Out-Null\n"
    )
    write(doctor, "nssm/deploy.ps1", script)
    assert doctor.findings(GRACEFUL) == []
    write(doctor, "nssm/deploy.ps1", script.replace("45000", "30000"))
    assert doctor.ids(GRACEFUL) == ["lastro.E070"]


def test_nssm_literal_and_missing_stop_method(doctor: Doctor) -> None:
    """A literal 40000 ms is fine; without the line NSSM waits 1500 ms, an error."""
    write(doctor, "nssm/deploy.ps1", "nssm set lastro AppStopMethodConsole 40000\n")
    assert doctor.findings(GRACEFUL) == []
    write(doctor, "nssm/deploy.ps1", "nssm install lastro python\n")
    assert "1500 ms" in doctor.one("lastro.E070", GRACEFUL).message


def test_nssm_stop_method_from_an_expression_is_a_warning(doctor: Doctor) -> None:
    """A computed value cannot be read here: lastro.W072."""
    write(doctor, "nssm/deploy.ps1", "$ms = $Graceful * 1000 + 5000\nnssm set x AppStopMethodConsole $ms\n")
    assert doctor.ids(GRACEFUL) == ["lastro.W072"]


def test_systemctl_reports_the_running_units_timeout(doctor: Doctor) -> None:
    """Under systemd, the loaded unit's TimeoutStopUSec counts: 20 s is lastro.E070."""
    calls: list[list[str]] = []

    def systemctl(command: list[str]) -> str:
        calls.append(command)
        return "LoadState=loaded\nTimeoutStopUSec=20s\n"

    finding = doctor.one("lastro.E070", GRACEFUL, environ={"INVOCATION_ID": "abc"}, run=systemctl)
    assert finding.message.startswith("systemctl show lastro.service")
    assert calls == [["systemctl", "show", "--property=LoadState,TimeoutStopUSec", "lastro.service"]]


def test_systemctl_without_such_a_unit_says_nothing(doctor: Doctor) -> None:
    """systemctl here, but no unit SERVICE_NAME: only the deploy files count."""
    machine = {"which": lambda _name: "/usr/bin/systemctl", "run": lambda _c: "LoadState=not-found\n"}
    assert doctor.findings(GRACEFUL, **machine) == []


def test_nothing_to_check_is_information(doctor: Doctor) -> None:
    """No deploy files and no systemd: lastro.I073 says the check did not run."""
    (doctor.deploy_dir / "systemd" / "lastro.service").unlink()
    assert doctor.ids(GRACEFUL) == ["lastro.I073"]
