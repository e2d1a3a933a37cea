"""Every check, run in order, and the text report grouped by severity."""

from __future__ import annotations

from collections.abc import Callable

from lastro.ops.doctor.capacity import check_memory, check_open_files, check_sqlite_version, check_workers
from lastro.ops.doctor.context import Context
from lastro.ops.doctor.findings import SEVERITIES, Finding, summary
from lastro.ops.doctor.security import check_instances, check_settings
from lastro.ops.doctor.service_manager import check_stop_timeout
from lastro.ops.doctor.storage import check_backups, check_disk_space, check_filesystem

__all__ = ["CHECKS", "render", "run_checks"]

Check = Callable[[Context], list[Finding]]
CHECKS: dict[str, Check] = {
    "settings": check_settings,
    "sqlite-version": check_sqlite_version,
    "workers": check_workers,
    "memory": check_memory,
    "instances": check_instances,
    "backups": check_backups,
    "filesystem": check_filesystem,
    "stop-timeout": check_stop_timeout,
    "open-files": check_open_files,
    "disk-space": check_disk_space,
}
_HEADINGS = {"error": "Errors", "warning": "Warnings", "info": "Info"}


def run_checks(context: Context) -> list[Finding]:
    """The findings of every check, errors first, each severity in the checks' order."""
    found = [finding for check in CHECKS.values() for finding in check(context)]
    return sorted(found, key=lambda finding: SEVERITIES.index(finding.severity))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 or word == "info" else f"{count} {word}s"


def render(findings: list[Finding], service: str) -> str:
    counts = summary(findings)
    head = ", ".join(_plural(counts[severity], severity) for severity in SEVERITIES)
    lines = [f"lastro doctor ({service}): {head}"]
    for severity in SEVERITIES:
        chosen = [finding for finding in findings if finding.severity == severity]
        if chosen:
            lines += ["", f"{_HEADINGS[severity]}:"]
        for finding in chosen:
            lines += [f"  {finding.id} {finding.message}", f"      fix: {finding.fix}"]
    return "\n".join(lines)
