"""What a run's steps say: the capacity, and whether more workers would help, from what was measured."""

from __future__ import annotations

from lastro.loadtest.assess import assess
from tests.support.loadtest_runs import make_run, make_step


def test_the_capacity_is_the_last_ok_step_before_the_first_that_is_not() -> None:
    """10 and 30 users ok, 50 degraded, 100 ok again: the capacity is 30 users."""
    run = make_run(make_step(10), make_step(30), make_step(50, p95=700), make_step(100))
    assessment = assess(run)
    assert assessment.capacity == 30
    assert assessment.limit is not None
    assert assessment.limit.users == 50
    assert "capacity: 30 users (ok); at 50 users the service was degraded" in assessment.findings


def test_a_run_all_ok_says_the_limit_is_beyond_it() -> None:
    """When every step is ok, the capacity is at least the last one, and larger --users are suggested."""
    assessment = assess(make_run(make_step(10), make_step(20)))
    assert assessment.capacity == 20
    assert any(
        "at least 20 users" in finding and "larger --users" in finding for finding in assessment.findings
    )


def test_a_first_step_not_ok_has_no_capacity() -> None:
    """Overloaded from the first step: no capacity, and the finding says it lies below."""
    assessment = assess(make_run(make_step(10, failures=50)))
    assert assessment.capacity is None
    assert "already 10 users were overloaded" in assessment.findings[0]


def test_cpu_bound_workers_with_idle_cores_get_more_workers() -> None:
    """Two workers at 95% each while the 4-core machine is 55% busy: more workers help, up to the cores."""
    run = make_run(
        make_step(10, server_cpu_percent=40.0, machine_cpu_percent=20.0, cpu_count=4),
        make_step(50, p95=800, server_cpu_percent=190.0, machine_cpu_percent=55.0, cpu_count=4),
    )
    assessment = assess(run)
    assert assessment.recommended_workers == 3
    assert any("more workers would help: try WORKERS=3" in finding for finding in assessment.findings)


def test_cpu_bound_workers_on_a_full_machine_are_told_more_cores() -> None:
    """Workers CPU-bound and the machine at 98%: more workers on this machine would not help."""
    run = make_run(make_step(50, p95=800, server_cpu_percent=180.0, machine_cpu_percent=98.0), cpu_count=2)
    assessment = assess(run)
    assert assessment.recommended_workers == 2
    assert any("would not help; more cores would" in finding for finding in assessment.findings)


def test_idle_workers_say_the_limit_is_elsewhere() -> None:
    """Latency past the threshold while the workers are 20% busy: more workers would not help."""
    run = make_run(make_step(50, p95=800, server_cpu_percent=40.0, machine_cpu_percent=30.0))
    assessment = assess(run)
    assert assessment.recommended_workers == 2
    assert any("not CPU-bound" in finding for finding in assessment.findings)


def test_unknown_workers_or_cpu_give_no_advice() -> None:
    """Without a worker count, or without the server's CPU (another machine), no worker count is advised."""
    unknown = assess(make_run(make_step(50, p95=800), workers=None))
    remote = assess(make_run(make_step(50, p95=800)))
    assert unknown.recommended_workers is None
    assert remote.recommended_workers is None
    assert any("--workers N" in finding for finding in unknown.findings)
    assert any("could not be measured" in finding for finding in remote.findings)


def test_a_busy_load_generator_is_named() -> None:
    """Locust at 95% of its core before the limit: the figures measure it as much as the service."""
    run = make_run(make_step(100, loadgen_cpu_percent=95.0), make_step(200, p95=900))
    assert any("load generator used 95% of a core at 100 users" in f for f in assess(run).findings)


def test_rate_limited_answers_point_at_the_rate_limits() -> None:
    """429s in a step say that one address is one client to the target's limits."""
    run = make_run(make_step(30, failures=40, statuses={"429": 40}))
    assert any(
        "40 answers were 429" in finding and "RATE_LIMIT_DEFAULT" in finding
        for finding in assess(run).findings
    )


def test_other_processes_busy_on_the_machine_are_said() -> None:
    """When neither side used most of a busy machine's CPU, the report says others did."""
    step = make_step(
        10, server_cpu_percent=20.0, loadgen_cpu_percent=10.0, machine_cpu_percent=90.0, cpu_count=2
    )
    assert step.other_cpu_percent == 75.0
    assert any("other processes used up to 75%" in finding for finding in assess(make_run(step)).findings)


def test_shed_answers_point_at_back_pressure() -> None:
    """503s in a step say the target refused work it could not serve in time."""
    run = make_run(make_step(200, failures=30, statuses={"503": 30}))
    assert any("30 answers were 503" in finding for finding in assess(run).findings)


def test_a_saturated_machine_with_idle_workers_blames_the_machine() -> None:
    """Workers at 10% each while the machine's cores are 99% busy: the machine, not the workers, was short."""
    run = make_run(make_step(200, p95=900, server_cpu_percent=20.0, machine_cpu_percent=99.0), cpu_count=2)
    assessment = assess(run)
    assert assessment.recommended_workers == 2
    assert any("the machine had no idle CPU" in finding for finding in assessment.findings)
