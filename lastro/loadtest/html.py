"""The HTML report: one self-contained file (inline CSS and SVG, no script) with the table, the verdicts,
the findings, the charts, the machine and the parameters of the run."""

from __future__ import annotations

from html import escape
from typing import Any

from lastro.loadtest.assess import assess
from lastro.loadtest.charts import VERDICT_COLOURS, latency_chart, throughput_chart
from lastro.loadtest.charts import WIDTH as CHART_WIDTH
from lastro.loadtest.results import Run, Step
from lastro.loadtest.text import HEADER, row

__all__ = ["html_report"]

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f4f4f4; }
td.verdict { font-weight: bold; text-align: left; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dt { font-weight: bold; }
table.names td:nth-child(2) { text-align: left; }
.note { background: #fff8e1; border-left: 4px solid #ffb300; padding: 8px 12px; }
"""

EXTRA = ("requests", "failures", "not 2xx/3xx", "Locust CPU", "server CPU", "machine CPU", "others' CPU")
BY_NAME = ("users", "request", "requests", "failures", "p50 ms", "p95 ms", "p99 ms")

LOADGEN_NOTE = (
    "Locust ran on the same machine as the service: it takes CPU the service would otherwise have, and one "
    "Locust process (gevent, one core) tops out at a few hundred to a couple of thousand requests a second. "
    "The CPU columns say how busy each side was: Locust's and the server's processes' in % of one core "
    "(200% = two cores), the machine's and the other processes' in % of all its cores."
)


def _cells(values: tuple[str, ...], tag: str = "td") -> str:
    return "".join(f"<{tag}>{escape(value)}</{tag}>" for value in values)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def _step_row(step: Step) -> str:
    *figures, verdict = row(step)
    statuses = ", ".join(f"{code}: {count}" for code, count in sorted(step.statuses.items())) or "-"
    extra = (
        str(step.requests),
        str(step.failures),
        statuses,
        _percent(step.loadgen_cpu_percent),
        _percent(step.server_cpu_percent),
        _percent(step.machine_cpu_percent),
        _percent(step.other_cpu_percent),
    )
    colour = VERDICT_COLOURS[verdict]
    return (
        f"<tr>{_cells(tuple(figures))}<td class='verdict' style='color:{colour}'>{escape(verdict)}</td>"
        f"{_cells(extra)}</tr>"
    )


def _by_name(run: Run) -> str:
    rows = []
    for step in run.steps:
        for name, figures in step.endpoints.items():
            values = (
                str(step.users),
                name,
                f"{figures['requests']:.0f}",
                f"{figures['failures']:.0f}",
                *(f"{figures[key]:.0f}" for key in ("p50_ms", "p95_ms", "p99_ms")),
            )
            rows.append(f"<tr>{_cells(values)}</tr>")
    return f"<table class='names'><tr>{_cells(BY_NAME, 'th')}</tr>{''.join(rows)}</table>"


def _definitions(items: dict[str, Any]) -> str:
    return (
        "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in items.items()) + "</dl>"
    )


def html_report(run: Run) -> str:
    assessment = assess(run)
    plan, thresholds = run.plan, run.plan.thresholds
    parameters = {
        "target": run.target,
        "scenario": run.scenario,
        "started": run.started_at,
        "users": ", ".join(str(users) for users in plan.users),
        "each step": f"{plan.step_duration:g} s: {plan.warm_up:g} s warm-up, then {plan.window:g} s measured",
        "ok when": f"p95 ≤ {thresholds.p95_ms:g} ms, p99 ≤ {thresholds.p99_ms:g} ms, "
        f"errors ≤ {thresholds.max_error_percent:g}%",
        "overloaded when": (
            f"errors > {thresholds.max_error_percent:g}% or p95 > {2 * thresholds.p95_ms:g} ms"
        ),
        "workers": run.workers if run.workers is not None else "unknown",
    }
    findings = list(assessment.findings)
    if run.interrupted:
        findings.insert(0, f"stopped early: {run.interrupted}")
    if assessment.recommended_workers is not None:
        findings.append(f"recommended: WORKERS={assessment.recommended_workers}")
    rows = "\n".join(_step_row(step) for step in run.steps)
    charts = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * CHART_WIDTH}" height="300" '
        f'viewBox="0 0 {2 * CHART_WIDTH} 300">{throughput_chart(run)}\n'
        f"{latency_chart(run, x=CHART_WIDTH)}</svg>"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Capacity report: {escape(run.target)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>Capacity report</h1>
<p>{escape(run.target)}, scenario {escape(run.scenario)}, {escape(run.started_at)}</p>
<h2>Steps</h2>
<table>
<tr>{_cells(HEADER, "th")}{_cells(EXTRA, "th")}</tr>
{rows}
</table>
<h2>Findings</h2>
<ul>{"".join(f"<li>{escape(finding)}</li>" for finding in findings)}</ul>
<p class="note">{escape(LOADGEN_NOTE)}</p>
<h2>Charts</h2>
{charts}
<h2>By request</h2>
{_by_name(run)}
<h2>Parameters</h2>
{_definitions(parameters)}
<h2>Machine</h2>
{_definitions(run.machine)}
</body>
</html>
"""
