"""`lastro loadtest` as a user runs it: a subprocess against a real `lastro serve` of the orders service.

Locust monkey-patches the standard library with gevent when imported, so the command never runs inside
the test process. Steps are tiny (2 and 4 users, 2 s each; the orders scenario one step of 4 users, as
the steps themselves are the default scenario's test): these tests check what the command does, not the
service's capacity (docs/capacity/ has that).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import assert_one_error_line
from tests.support.process import ROOT, ServerProcess, free_port
from tests.support.servers import ServeProcess, serve

TINY = ("--users", "2,4", "--step-duration", "2")
PROCESS_ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
ORDERS_SCENARIO = "examples/orders/loadtest.py"


def loadtest(*args: str, cwd: Path = ROOT, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m lastro loadtest ARGS` (or `python -c CODE loadtest ARGS`) with this tree's lastro."""
    runner = ["-c", code] if code else ["-m", "lastro"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(cwd)}
    return subprocess.run(
        [sys.executable, *runner, "loadtest", *args],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=cwd,
        env=env,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """The orders service, 2 workers on SQLite, with its rate limits out of the way of one load address, and
    no shedding when a loaded test machine holds a worker's loop past MAX_LOOP_LAG: each answer is the
    route's own."""
    with serve(
        tmp_path_factory.mktemp("loadtest"),
        RATE_LIMIT_DEFAULT="1000000/minute",
        RATE_LIMIT_LOGIN="1000000/minute",
        MAX_LOOP_LAG="0",
    ) as process:
        yield process


def test_the_default_scenario_prints_the_table_and_writes_the_report(
    server: ServeProcess, tmp_path: Path
) -> None:
    """GET of the URL at 2 then 4 users: the duration announced, a table row per step, an HTML report with
    both charts and an SVG that parses."""
    report, chart = tmp_path / "report.html", tmp_path / "chart.svg"
    result = loadtest(f"{server.url}/health/live", *TINY, "--report", str(report), "--chart", str(chart))
    assert result.returncode == 0, result.stderr
    assert "2 steps (2, 4 users) of 2 s" in result.stderr
    assert "4 s in all, stopped by 9 s" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split("|")[1:-1] == [
        " users ",
        " req/s ",
        " p50 ms ",
        " p95 ms ",
        " p99 ms ",
        " errors ",
        " verdict ",
    ]
    rows = [line.split("|") for line in lines[2:4]]
    assert [row[1].strip() for row in rows] == ["2", "4"]
    assert all(row[7].strip() in ("ok", "degraded", "overloaded") for row in rows)
    page = report.read_text()
    assert page.count("<polyline") == 4
    assert "Throughput" in page
    assert "Latency" in page
    assert ET.parse(chart).getroot().tag.endswith("svg")


def test_the_orders_scenario_runs_without_failures(server: ServeProcess) -> None:
    """The orders mix (login, list, read, create with Idempotency-Key, change with If-Match) as JSON: every
    request succeeds, the workers come from /health and the server's CPU is measured."""
    result = loadtest(
        server.url, "--users", "4", "--step-duration", "2", "--scenario", ORDERS_SCENARIO, "--json"
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    steps = document["steps"]
    assert [step["users"] for step in steps] == [4]
    assert sum(step["requests"] for step in steps) > 0
    assert [step["failures"] for step in steps] == [0], steps
    names = {name for step in steps for name in step["endpoints"]}
    assert names <= {
        "GET /api/orders?limit=20",
        "GET /api/orders/{id}",
        "POST /api/orders",
        "PATCH /api/orders/{id}",
        "DELETE /api/orders/{id}",
        "POST /api/auth/token",
    }
    assert document["workers"] == 2
    assert all(step["server_cpu_percent"] is not None for step in steps)
    assert document["scenario"] == ORDERS_SCENARIO


def test_a_failing_path_is_overloaded_and_stops_the_run(server: ServeProcess) -> None:
    """Every GET answered 404: the first step is overloaded with its statuses counted, and the higher steps
    are not run."""
    result = loadtest(f"{server.url}/no/such/page", *TINY, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    (step,) = document["steps"]
    assert step["verdict"] == "overloaded"
    assert set(step["statuses"]) == {"404"}
    assert "the higher steps were not run" in document["interrupted"]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("http://192.0.2.10:8000/",), ("not a loopback address", "--allow-host 192.0.2.10")),
        (("http://127.0.0.1:8000/", "--users", "10,20", "--step-duration", "3000"), ("--step-duration",)),
        (("http://127.0.0.1:8000/", "--users", "50,10"), ("--users counts must increase",)),
        (("http://127.0.0.1:8000/", "--report", "missing/dir/report.html"), ("--report", "does not exist")),
    ],
    ids=["not-loopback", "too-long", "decreasing-users", "report-directory"],
)
def test_a_refused_run_is_one_error_line_with_exit_code_2(
    args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    """A target that is not loopback without --allow-host, an absurd duration or a bad option: one line,
    exit code 2, before any request."""
    assert_one_error_line(loadtest(*args), 2, *fragments)


@pytest.mark.parametrize(
    ("source", "scenario", "fragment"),
    [
        (None, "nowhere.py", "no such file nowhere.py"),
        (
            "raise RuntimeError('scenario broke')\n",
            "broken.py",
            "failed to import: RuntimeError: scenario broke",
        ),
        ("X = 1\n", "empty.py:X", "X is not a concrete Locust User class"),
    ],
    ids=["missing-file", "raises", "not-a-user-class"],
)
def test_a_bad_scenario_is_one_error_line(
    tmp_path: Path, source: str | None, scenario: str, fragment: str
) -> None:
    """A scenario that cannot be loaded is one `Error:` line naming what is wrong, exit code 2."""
    if source is not None:
        (tmp_path / scenario.partition(":")[0]).write_text(source)
    result = loadtest("http://127.0.0.1:9/", *TINY, "--scenario", scenario, cwd=tmp_path)
    assert_one_error_line(result, 2, f"--scenario {scenario}", fragment)


def test_a_target_that_does_not_answer_is_one_error_line() -> None:
    """Nothing listening at the URL: one line saying so, exit code 1, before any step."""
    port = free_port()
    assert_one_error_line(
        loadtest(f"http://127.0.0.1:{port}/", *TINY), 1, f"127.0.0.1:{port}/ did not answer"
    )


def test_without_locust_the_command_says_how_to_install_it() -> None:
    """When Locust cannot be imported, one line gives the pip command of the loadtest extra, exit code 2."""
    blocked = "import sys; sys.modules['locust'] = None; from lastro.cli import main; main()"
    result = loadtest("http://127.0.0.1:9/", *TINY, code=blocked)
    assert_one_error_line(result, 2, "pip install 'lastro[loadtest]'")


def test_ctrl_c_reports_what_was_measured_and_exits_130(server: ServeProcess) -> None:
    """SIGINT once the run is announced: the report of the steps measured until then (none, or some), a
    line saying it was interrupted, exit code 130, and no traceback."""
    command = [sys.executable, "-m", "lastro", "loadtest", f"{server.url}/health/live", "--users", "2,4,6"]
    with subprocess.Popen(
        [*command, "--step-duration", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=PROCESS_ENV,
    ) as process:
        assert process.stderr is not None
        assert "3 steps (2, 4, 6 users)" in process.stderr.readline()  # under way once announced
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert out.startswith("| users |")
    assert "- stopped early: interrupted (Ctrl-C)" in out
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err


def test_a_target_that_goes_away_is_overloaded_not_a_hang(tmp_path: Path) -> None:
    """The target killed once the run is announced: its last step counts refused connections (status 0)
    as failures, is overloaded, and the run ends within its bound."""
    port = free_port()
    target = ServerProcess(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "http.log",
        port=port,
        ready_path="/",
        cwd=tmp_path,
    )
    command = [sys.executable, "-m", "lastro", "loadtest", f"{target.url}/", *TINY, "--json"]
    with (
        target,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=PROCESS_ENV
        ) as process,
    ):
        assert process.stderr is not None
        assert "2 steps (2, 4 users)" in process.stderr.readline()
        target.stop()
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    last = json.loads(out)["steps"][-1]
    assert last["verdict"] == "overloaded"
    assert last["statuses"].get("0", 0) > 0
