"""`lastro loadtest URL`: a capacity report of a running service, measured with Locust (`lastro[loadtest]`).

The arguments are checked first, then the scenario is loaded, then the target probed: a mistake is one
`Error:` line before any request. Locust monkey-patches the standard library with gevent when imported,
which only this command's own process may take on: it is imported once the arguments are good.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lastro.cli.common import EXIT_CONFIG, EXIT_FAILED, fail
from lastro.errors import ConfigurationError, one_line
from lastro.loadtest.machine import ServerProcesses, machine_facts
from lastro.loadtest.plan import DEFAULT_USERS, Plan, Thresholds, parse_users
from lastro.loadtest.probe import TargetUnreachable, probe, workers_of
from lastro.loadtest.results import Run
from lastro.loadtest.target import Target, check_target

if TYPE_CHECKING:
    from locust import User

__all__ = ["loadtest"]

EXIT_INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C (128 + SIGINT)
INSTALL = "lastro loadtest needs Locust: pip install 'lastro[loadtest]'"


class ProgressBar:
    """click's progress bar on stderr, moved by the seconds elapsed; silent when stderr is no terminal."""

    def __init__(self, total: float) -> None:
        self.shown, self.total = 0, int(total)
        self.bar = click.progressbar(
            length=self.total, file=sys.stderr, label="loadtest", show_pos=False, width=30
        )
        self.visible = sys.stderr.isatty()

    def __call__(self, elapsed: float, label: str) -> None:
        if not self.visible:
            return
        self.bar.label = label
        if int(elapsed) > self.shown:
            self.bar.update(int(elapsed) - self.shown)
            self.shown = int(elapsed)
        self.bar.render_progress()

    def close(self) -> None:
        if self.visible:
            self.bar.update(self.total - self.shown)
            self.bar.render_finish()


def _plan(users: str, step_duration: float, p95_ok: float, p99_ok: float, max_error_rate: float) -> Plan:
    return Plan(parse_users(users), step_duration, Thresholds(p95_ok, p99_ok, max_error_rate))


def _check_output(path: str | None, option: str) -> None:
    """Refuse now, not after the run, an output whose directory does not exist."""
    if path is not None and not Path(path).absolute().parent.is_dir():
        fail(f"{option} {path}: the directory {Path(path).parent} does not exist", EXIT_CONFIG)


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"writing {path} failed: {one_line(exc)}", EXIT_FAILED)
    click.echo(f"wrote {path}", err=True)


@click.command()
@click.argument("url")
@click.option(
    "--users", default=DEFAULT_USERS, show_default=True, help="User counts, one step each, increasing."
)
@click.option(
    "--step-duration",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds per step: a quarter (at most 10 s) warm-up, the rest measured.",
)
@click.option(
    "--scenario",
    metavar="MODULE:CLASS|PATH.py[:CLASS]",
    help="Locust User classes to run; default: each user GETs URL about once a second.",
)
@click.option(
    "--p95-ok", type=float, default=500.0, show_default=True, help="Highest p95 (ms) of an ok step."
)
@click.option(
    "--p99-ok", type=float, default=1000.0, show_default=True, help="Highest p99 (ms) of an ok step."
)
@click.option(
    "--max-error-rate",
    type=float,
    default=1.0,
    show_default=True,
    help="Highest % of failed requests of an ok step.",
)
@click.option("--report", type=click.Path(dir_okay=False), help="Write the HTML report here.")
@click.option("--chart", type=click.Path(dir_okay=False), help="Write the charts as an SVG file here.")
@click.option(
    "--allow-host",
    "allowed_hosts",
    multiple=True,
    metavar="HOST",
    help="A non-loopback host you run that may be loaded.",
)
@click.option(
    "--workers", type=click.IntRange(min=1), help="The target's worker count, if /health does not say."
)
@click.option(
    "--json", "as_json", is_flag=True, default=False, help="Print the results as JSON instead of the table."
)
def loadtest(
    url: str,
    users: str,
    step_duration: float,
    scenario: str | None,
    p95_ok: float,
    p99_ok: float,
    max_error_rate: float,
    report: str | None,
    chart: str | None,
    allowed_hosts: tuple[str, ...],
    workers: int | None,
    as_json: bool,
) -> None:
    """Measure the capacity of the service at URL: throughput, p50/p95/p99 and errors per user count.

    Targets loopback only, unless the URL's host is given with --allow-host. Prints the expected duration
    first; every run is bounded (at most an hour). Needs the extra: pip install 'lastro[loadtest]'.
    """
    try:
        plan = _plan(users, step_duration, p95_ok, p99_ok, max_error_rate)
        target = check_target(url, allowed_hosts)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    _check_output(report, "--report")
    _check_output(chart, "--chart")
    if not locust_installed():
        fail(INSTALL, EXIT_CONFIG)
    user_classes = _user_classes(scenario, target)  # imports Locust: gevent patches this process from here
    try:
        probe(target.origin + target.path)
    except TargetUnreachable as exc:
        fail(str(exc), EXIT_FAILED)
    run = Run(
        target=target.origin + target.path,
        scenario=scenario or f"GET {target.path}",
        plan=plan,
        machine=machine_facts(),
        workers=workers or workers_of(target.origin),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    _measure(run, user_classes, target)
    _output(run, report, chart, as_json)
    if run.cancelled:
        sys.exit(EXIT_INTERRUPTED)


def locust_installed() -> bool:
    """Whether Locust can be imported, found without importing it (importing it patches the process)."""
    try:
        return importlib.util.find_spec("locust") is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a module set to None
        return False


def _user_classes(scenario: str | None, target: Target) -> list[type[User]]:
    try:
        from lastro.loadtest.scenario import default_scenario, load_scenario
    except ImportError as exc:  # found but broken: say what, and how to install it again
        fail(f"{INSTALL} ({one_line(exc)})", EXIT_CONFIG)
    try:
        return load_scenario(scenario) if scenario else default_scenario(target.path)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)


def _measure(run: Run, user_classes: list[type[User]], target: Target) -> None:
    from lastro.loadtest.runner import Cancel, run_steps

    plan, cancel = run.plan, Cancel()
    previous = signal.signal(signal.SIGINT, cancel)  # Ctrl-C ends the run with the steps measured so far
    try:
        counts = ", ".join(str(count) for count in plan.users)
        click.echo(
            f"loadtest {run.target} ({run.scenario}): {len(plan.users)} steps ({counts} users) of "
            f"{plan.step_duration:g} s, {plan.warm_up:g} s of each a warm-up; "
            f"{plan.step_duration * len(plan.users):.0f} s in all, stopped by {plan.total_seconds:.0f} s",
            err=True,
        )
        bar = ProgressBar(plan.total_seconds)
        server = ServerProcesses(target.port) if target.loopback else None
        begun = time.monotonic()
        try:
            run_steps(run, user_classes, target.origin, server, bar, cancel)
        finally:
            bar.close()
    finally:
        signal.signal(signal.SIGINT, previous)
    click.echo(f"measured in {time.monotonic() - begun:.0f} s", err=True)


def _output(run: Run, report: str | None, chart: str | None, as_json: bool) -> None:
    from lastro.loadtest.charts import charts_svg
    from lastro.loadtest.html import html_report
    from lastro.loadtest.text import as_dict, summary

    if report:
        _write(report, html_report(run))
    if chart:
        _write(chart, charts_svg(run))
    click.echo(json.dumps(as_dict(run), indent=2) if as_json else summary(run))
