"""The run as text, JSON, SVG and HTML: the seed's table, the findings, charts that parse."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from lastro.loadtest.charts import charts_svg, nice_ceiling
from lastro.loadtest.html import html_report
from lastro.loadtest.results import Run
from lastro.loadtest.text import as_dict, markdown_table, summary
from tests.support.loadtest_runs import make_run, make_step

SVG = "{http://www.w3.org/2000/svg}"


def sample_run() -> Run:
    return make_run(
        make_step(10, p95=80, server_cpu_percent=30.0, machine_cpu_percent=20.0, statuses={}),
        make_step(30, p95=650, server_cpu_percent=150.0, machine_cpu_percent=60.0),
        make_step(
            50,
            p95=1400,
            failures=30,
            statuses={"503": 30},
            endpoints={
                "GET /": {"requests": 1000.0, "failures": 30.0, "p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0}
            },
        ),
    )


def test_the_table_has_the_seed_columns_one_row_per_step() -> None:
    """users, req/s, p50, p95, p99, errors and verdict, as a Markdown table with one row per step."""
    lines = markdown_table(make_run(make_step(10, p95=90), make_step(30, p95=600)).steps).splitlines()
    assert [cell.strip() for cell in lines[0].strip("|").split("|")] == [
        "users",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "verdict",
    ]
    assert lines[1].startswith("|------:|")
    assert [cell.strip() for cell in lines[3].strip("|").split("|")] == [
        "30",
        "60.0",
        "200",
        "600",
        "900",
        "0.00%",
        "degraded",
    ]


def test_the_summary_ends_with_the_findings_and_the_workers() -> None:
    """Below the table: the capacity, the worker advice and the recommended WORKERS."""
    text = summary(sample_run())
    assert "- capacity: 10 users (ok); at 30 users the service was degraded" in text
    assert text.splitlines()[-1].startswith("- recommended: WORKERS=")


def test_the_json_holds_every_step_and_the_verdicts() -> None:
    """The JSON document round-trips, with each step's figures, the capacity and the findings."""
    document = json.loads(json.dumps(as_dict(sample_run())))
    assert [step["verdict"] for step in document["steps"]] == ["ok", "degraded", "overloaded"]
    assert document["steps"][2]["statuses"] == {"503": 30}
    assert document["capacity_users"] == 10
    assert document["machine"]["cpu_count"] == 4


def test_the_charts_are_one_svg_with_a_line_per_series() -> None:
    """The SVG parses; throughput is one line and latency three (p50, p95, p99), a point per step each."""
    root = ET.fromstring(charts_svg(sample_run()))
    assert root.tag == f"{SVG}svg"
    assert len(root.findall(f".//{SVG}polyline")) == 4
    assert len(root.findall(f".//{SVG}circle")) == 4 * 3
    texts = {element.text for element in root.iter(f"{SVG}text")}
    assert {"Throughput", "Latency", "p95 ok", "p99 ok"} <= texts


def test_axes_end_on_round_numbers() -> None:
    """An axis ends at a round number at or above the highest value, in 4 to 6 ticks."""
    assert nice_ceiling(187.0) == (200.0, 50.0)
    assert nice_ceiling(0.0) == (1.0, 0.25)
    top, tick = nice_ceiling(1234.0)
    assert top >= 1234.0
    assert 4 <= top / tick <= 6


def test_the_html_report_is_self_contained() -> None:
    """One file: the table with verdicts, the findings, inline SVG charts, machine and parameters; no script,
    nothing loaded from elsewhere."""
    page = html_report(sample_run())
    for fragment in (
        "<table>",
        "overloaded",
        "<svg",
        "Throughput",
        "test CPU",
        "p95 ≤ 500 ms",
        "503: 30",
        "GET /",
    ):
        assert fragment in page
    assert "<script" not in page
    assert "src=" not in page
    assert "href=" not in page
