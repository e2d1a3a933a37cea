"""A finding of `lastro doctor`: an id, a severity, what is wrong and the fix, and how they are reported."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["SEVERITIES", "Finding", "Severity", "exit_code", "split_problem", "summary", "to_document"]

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """`id` is stable (`lastro.E070`: E error, W warning, I info), so a deploy can track or silence one."""

    id: str
    severity: Severity
    message: str
    fix: str


def summary(findings: Iterable[Finding]) -> dict[Severity, int]:
    counts: dict[Severity, int] = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        counts[finding.severity] += 1
    return counts


def exit_code(findings: Iterable[Finding]) -> int:
    """1 when any finding is an error: the service would refuse to start, or lose data or requests."""
    return 1 if summary(findings)["error"] else 0


def to_document(findings: list[Finding], checks: list[str]) -> dict[str, Any]:
    """The `--json` document: every finding, the counts per severity and the checks that ran."""
    return {
        "findings": [asdict(finding) for finding in findings],
        "summary": summary(findings),
        "checks": checks,
        "ok": exit_code(findings) == 0,
    }


def split_problem(problem: str) -> tuple[str, str]:
    """lastro's refusals read `what is wrong: the fix`; (what, fix)."""
    message, sep, fix = problem.partition(": ")
    return (message, fix) if sep else (problem, "change the value the message names")
