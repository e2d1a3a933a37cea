"""The run as text: the seed's table (Markdown, so it pastes into docs), the findings, and as JSON."""

from __future__ import annotations

from typing import Any

from lastro.loadtest.assess import assess
from lastro.loadtest.results import Run, Step

__all__ = ["HEADER", "as_dict", "markdown_table", "summary"]

HEADER = ("users", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "verdict")


def row(step: Step) -> tuple[str, ...]:
    return (
        str(step.users),
        f"{step.rps:.1f}",
        f"{step.p50_ms:.0f}",
        f"{step.p95_ms:.0f}",
        f"{step.p99_ms:.0f}",
        f"{step.error_percent:.2f}%",
        step.verdict,
    )


def markdown_table(steps: list[Step]) -> str:
    rows = [HEADER, *(row(step) for step in steps)]
    widths = [max(len(cells[column]) for cells in rows) for column in range(len(HEADER))]

    def line(cells: tuple[str, ...]) -> str:
        # Numbers right-aligned, words left-aligned, as Markdown's alignment row says.
        padded = [
            cell.rjust(width) if i < 6 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(("-" * (w + 1) + ":") if i < 6 else (":" + "-" * (w + 1)) for i, w in enumerate(widths))
        + "|"
    )
    return "\n".join([line(rows[0]), rule, *(line(cells) for cells in rows[1:])])


def summary(run: Run) -> str:
    """The table, then one line per finding."""
    assessment = assess(run)
    lines = [markdown_table(run.steps), ""]
    if run.interrupted:
        lines.append(f"- stopped early: {run.interrupted}")
    lines += [f"- {finding}" for finding in assessment.findings]
    if assessment.recommended_workers is not None:
        lines.append(f"- recommended: WORKERS={assessment.recommended_workers}")
    return "\n".join(lines)


def as_dict(run: Run) -> dict[str, Any]:
    assessment = assess(run)
    return {
        "target": run.target,
        "scenario": run.scenario,
        "started_at": run.started_at,
        "plan": run.plan.as_dict(),
        "machine": run.machine,
        "workers": run.workers,
        "steps": [step.as_dict() for step in run.steps],
        "capacity_users": assessment.capacity,
        "recommended_workers": assessment.recommended_workers,
        "findings": assessment.findings,
        "interrupted": run.interrupted,
    }
