"""The report: errors first, grouped by severity in text, a JSON document, exit code 1 on an error."""

from __future__ import annotations

from lastro.ops.doctor import CHECKS, Finding, exit_code, render, to_document
from tests.ops.doctor.conftest import Doctor

ERROR = Finding("lastro.E070", "error", "killed too soon", "wait longer")
WARNING = Finding("lastro.W050", "warning", "no backups", "schedule them")
INFO = Finding("lastro.I008", "info", "no token", "set one")


def test_findings_come_errors_first(doctor: Doctor) -> None:
    """Whatever the checks' order, errors precede warnings, which precede information."""
    found = doctor.findings({"SECRET_KEY": "short", "BACKUP_EVERY": None, "HEALTH_TOKEN": None})
    assert [finding.severity for finding in found] == ["error", "warning", "info"]


def test_the_text_groups_by_severity() -> None:
    """A count line, then a heading per severity with each finding and its fix."""
    text = render([ERROR, WARNING, INFO], "orders")
    assert text.splitlines()[0] == "lastro doctor (orders): 1 error, 1 warning, 1 info"
    assert text.index("Errors:") < text.index("lastro.E070 killed too soon") < text.index("Warnings:")
    assert "      fix: wait longer" in text
    assert text.index("Warnings:") < text.index("Info:")


def test_a_clean_text_report_has_only_the_count_line() -> None:
    """No finding: one line."""
    assert render([], "orders") == "lastro doctor (orders): 0 errors, 0 warnings, 0 info"


def test_the_exit_code_is_one_on_an_error_only() -> None:
    """Warnings and information alone exit 0."""
    assert exit_code([WARNING, INFO]) == 0
    assert exit_code([INFO, ERROR]) == 1
    assert exit_code([]) == 0


def test_the_json_document() -> None:
    """Findings with every field, counts per severity, the checks that ran, and ok."""
    document = to_document([ERROR, INFO], list(CHECKS))
    assert document["findings"][0] == {
        "id": "lastro.E070",
        "severity": "error",
        "message": "killed too soon",
        "fix": "wait longer",
    }
    assert document["summary"] == {"error": 1, "warning": 0, "info": 1}
    assert document["ok"] is False
    assert "stop-timeout" in document["checks"]


def test_every_id_names_its_severity(doctor: Doctor) -> None:
    """lastro.E... is an error, lastro.W... a warning, lastro.I... information, in a busy report."""
    settings = {"SECRET_KEY": "short", "BACKUP_EVERY": None, "HEALTH_TOKEN": None, "WORKERS": "9"}
    found = doctor.findings(settings, open_files=(100, 100), sqlite_version=(3, 40, 0))
    assert len(found) >= 5
    for finding in found:
        assert finding.id[len("lastro.")] == finding.severity[0].upper()
