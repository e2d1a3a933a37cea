"""The report's charts as inline SVG: throughput, and the latency percentiles, against users.

Plain SVG text with no script and no font or file of its own, so the HTML report is one self-contained file
and the same picture can be committed as an .svg that a README shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from lastro.loadtest.results import Run

__all__ = ["VERDICT_COLOURS", "charts_svg", "latency_chart", "throughput_chart"]

WIDTH, HEIGHT = 480, 300
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 40, 45
VERDICT_COLOURS = {"ok": "#2e7d32", "degraded": "#ef6c00", "overloaded": "#c62828"}
FONT = 'font-family="sans-serif" font-size="12"'


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    values: list[float]


def nice_ceiling(value: float) -> tuple[float, float]:
    """An axis top at or above `value` and a tick step that divides it into 4 to 6 parts."""
    if value <= 0:
        return 1.0, 0.25
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0):
        tick = step * magnitude
        if math.ceil(value / tick) <= 6:
            return math.ceil(value / tick) * tick, tick
    return value, value / 5  # not reached: 10 * magnitude divides any value in at most 10 parts


def _label(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:g}"


def line_chart(
    title: str,
    y_label: str,
    users: list[int],
    series: list[Series],
    limits: list[tuple[str, float]] | None = None,
    verdicts: Sequence[str] | None = None,
    x: int = 0,
) -> str:
    """A <g> of one chart at horizontal offset `x`: a line per series, dashed lines for the limits, and
    the first series' points coloured by the step's verdict."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    limits = limits or []
    x_top, x_tick = nice_ceiling(max(users, default=1))
    highest = max([value for item in series for value in item.values] + [value for _, value in limits] + [0])
    y_top, y_tick = nice_ceiling(highest * 1.05)

    def px(value: float) -> float:
        return LEFT + plot_w * value / x_top

    def py(value: float) -> float:
        return TOP + plot_h * (1 - value / y_top)

    parts = [
        f'<g transform="translate({x},0)" {FONT}>',
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">'
        f"{escape(title)}</text>",
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
    ]
    for i in range(round(y_top / y_tick) + 1):
        y = py(i * y_tick)
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(i * y_tick)}</text>')
    for i in range(round(x_top / x_tick) + 1):
        xv = px(i * x_tick)
        parts.append(
            f'<text x="{xv:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{_label(i * x_tick)}</text>'
        )
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle">users</text>')
    parts.append(
        f'<text x="14" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2})">{escape(y_label)}</text>'
    )
    for name, value in limits:
        y = py(value)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c62828" '
            'stroke-dasharray="5,4"/>'
        )
        parts.append(
            f'<text x="{LEFT + plot_w - 4}" y="{y - 4:.1f}" text-anchor="end" fill="#c62828">'
            f"{escape(name)}</text>"
        )
    for index, item in enumerate(series):
        points = " ".join(f"{px(u):.1f},{py(v):.1f}" for u, v in zip(users, item.values, strict=True))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{item.colour}" stroke-width="2"/>')
        for step, (u, v) in enumerate(zip(users, item.values, strict=True)):
            fill = (
                VERDICT_COLOURS.get(verdicts[step], item.colour) if verdicts and index == 0 else item.colour
            )
            parts.append(f'<circle cx="{px(u):.1f}" cy="{py(v):.1f}" r="4" fill="{fill}"/>')
        legend_y = TOP + 14 + 16 * index
        parts.append(
            f'<line x1="{LEFT + 8}" x2="{LEFT + 26}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
            f'stroke="{item.colour}" stroke-width="2"/>'
        )
        parts.append(f'<text x="{LEFT + 30}" y="{legend_y}">{escape(item.name)}</text>')
    parts.append("</g>")
    return "\n".join(parts)


def throughput_chart(run: Run, x: int = 0) -> str:
    users = [step.users for step in run.steps]
    verdicts = [step.verdict for step in run.steps]
    rps = Series("req/s (point: verdict)", "#1565c0", [step.rps for step in run.steps])
    return line_chart("Throughput", "requests per second", users, [rps], verdicts=verdicts, x=x)


def latency_chart(run: Run, x: int = 0) -> str:
    users = [step.users for step in run.steps]
    verdicts = [step.verdict for step in run.steps]
    series = [
        Series("p95", "#6a1b9a", [step.p95_ms for step in run.steps]),
        Series("p50", "#00838f", [step.p50_ms for step in run.steps]),
        Series("p99", "#ad1457", [step.p99_ms for step in run.steps]),
    ]
    limits = [("p95 ok", run.plan.thresholds.p95_ms), ("p99 ok", run.plan.thresholds.p99_ms)]
    return line_chart("Latency", "milliseconds", users, series, limits, verdicts, x=x)


def charts_svg(run: Run) -> str:
    """Both charts side by side, a standalone SVG document."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {2 * WIDTH} {HEIGHT}" role="img" aria-label="throughput and latency against users">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n'
        f"{throughput_chart(run)}\n{latency_chart(run, x=WIDTH)}\n</svg>\n"
    )
