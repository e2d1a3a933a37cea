"""CircuitBreaker: closed → open after `threshold` failures → half-open after `reset_after` → closed.

The clock is injected: time moves only when a test says so.
"""

from __future__ import annotations

import pytest

from lastro.db.breaker import BreakerState, CircuitBreaker
from lastro.errors import ServiceUnavailable
from tests.support.clock import FakeTime


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def breaker(time: FakeTime) -> CircuitBreaker:
    return CircuitBreaker(threshold=3, reset_after=2.0, clock=time.clock)


def _fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.record_failure(ConnectionRefusedError("connection refused\nsecond line"))


def test_starts_closed_and_lets_calls_through(breaker: CircuitBreaker) -> None:
    """A new breaker is closed: before_call does not raise."""
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()


def test_stays_closed_below_the_threshold(breaker: CircuitBreaker) -> None:
    """threshold - 1 failures in a row leave the breaker closed."""
    _fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()


def test_opens_after_threshold_failures_in_a_row(breaker: CircuitBreaker) -> None:
    """The threshold-th failure in a row opens the breaker."""
    _fail(breaker, 3)
    assert breaker.state is BreakerState.OPEN


def test_open_breaker_refuses_calls_with_service_unavailable(breaker: CircuitBreaker) -> None:
    """While open, before_call raises ServiceUnavailable naming the last error."""
    _fail(breaker, 3)
    with pytest.raises(ServiceUnavailable, match="ConnectionRefusedError: connection refused"):
        breaker.before_call()


def test_success_resets_the_count_of_failures_in_a_row(breaker: CircuitBreaker) -> None:
    """Failures separated by a success do not add up to the threshold."""
    _fail(breaker, 2)
    breaker.record_success()
    _fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED


def test_retry_after_counts_down_to_the_half_open_moment(breaker: CircuitBreaker, time: FakeTime) -> None:
    """retry_after is the whole seconds left before a trial call, at least 1."""
    _fail(breaker, 3)
    assert breaker.retry_after() == 2
    time.now += 0.5
    assert breaker.retry_after() == 2  # 1.5 s left, rounded up
    time.now += 0.7
    assert breaker.retry_after() == 1
    time.now += 10
    assert breaker.retry_after() == 1


def test_refusal_carries_retry_after(breaker: CircuitBreaker, time: FakeTime) -> None:
    """The ServiceUnavailable raised while open carries the breaker's retry_after."""
    breaker = CircuitBreaker(threshold=1, reset_after=30.0, clock=time.clock)
    _fail(breaker, 1)
    time.now += 4.5
    with pytest.raises(ServiceUnavailable) as raised:
        breaker.before_call()
    assert raised.value.retry_after == 26


def test_closed_breaker_retry_after_is_one_second(breaker: CircuitBreaker) -> None:
    """With nothing to wait for, retry_after is the minimum, 1 s."""
    assert breaker.retry_after() == 1


def test_half_open_after_reset_time(breaker: CircuitBreaker, time: FakeTime) -> None:
    """Once reset_after has elapsed since opening, the breaker is half-open."""
    _fail(breaker, 3)
    time.now += 1.99
    assert breaker.state is BreakerState.OPEN
    time.now += 0.01
    assert breaker.state is BreakerState.HALF_OPEN


def test_half_open_lets_exactly_one_trial_through(breaker: CircuitBreaker, time: FakeTime) -> None:
    """In half-open the first call is the trial; the others are refused while it runs."""
    _fail(breaker, 3)
    time.now += 2.0
    breaker.before_call()
    with pytest.raises(ServiceUnavailable):
        breaker.before_call()


def test_successful_trial_closes(breaker: CircuitBreaker, time: FakeTime) -> None:
    """A trial call that reaches the database closes the breaker and forgets the error."""
    _fail(breaker, 3)
    time.now += 2.0
    breaker.before_call()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot() == {"state": "closed", "consecutive_failures": 0, "last_error": None}


def test_failed_trial_reopens_for_a_full_reset_period(breaker: CircuitBreaker, time: FakeTime) -> None:
    """A failed trial opens the breaker again, counting reset_after from the failure."""
    _fail(breaker, 3)
    time.now += 2.0
    breaker.before_call()
    _fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == 2


def test_released_trial_lets_another_trial_through(breaker: CircuitBreaker, time: FakeTime) -> None:
    """A trial that ended with a permanent error frees the slot for the next trial."""
    _fail(breaker, 3)
    time.now += 2.0
    breaker.before_call()
    breaker.release_trial()
    breaker.before_call()
    assert breaker.state is BreakerState.HALF_OPEN


def test_failed_probe_opens_at_once(breaker: CircuitBreaker) -> None:
    """One failed watchdog probe opens the breaker whatever the threshold."""
    breaker.probe_failed(OSError("unable to open database file"))
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(ServiceUnavailable, match="unable to open database file"):
        breaker.before_call()


def test_failed_probe_holds_open_past_the_reset_time(breaker: CircuitBreaker, time: FakeTime) -> None:
    """A breaker opened by a probe never goes half-open: no trial call hits a database known down."""
    breaker.probe_failed(OSError("down"))
    time.now += 60
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(ServiceUnavailable):
        breaker.before_call()


def test_probe_failed_keeps_an_open_breaker_open(breaker: CircuitBreaker, time: FakeTime) -> None:
    """probe_failed on a breaker already open by failures keeps it open, even past reset_after."""
    _fail(breaker, 3)
    breaker.probe_failed(OSError("still down"))
    time.now += 5
    assert breaker.state is BreakerState.OPEN
    assert breaker.last_error == "OSError: still down"


def test_call_success_does_not_close_a_probe_held_breaker(breaker: CircuitBreaker) -> None:
    """Only a probe closes a breaker held open by a probe; a stray call success does not."""
    breaker.probe_failed(OSError("down"))
    breaker.record_success()
    assert breaker.state is BreakerState.OPEN


def test_probe_succeeded_closes(breaker: CircuitBreaker) -> None:
    """A successful probe closes the breaker whatever opened it."""
    breaker.probe_failed(OSError("down"))
    breaker.probe_succeeded()
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()


def test_probe_succeeded_closes_a_breaker_opened_by_failures(breaker: CircuitBreaker) -> None:
    """A successful probe also closes a breaker opened by failed calls, before reset_after."""
    _fail(breaker, 3)
    breaker.probe_succeeded()
    assert breaker.state is BreakerState.CLOSED


def test_snapshot_reports_state_failures_and_first_line_of_error(breaker: CircuitBreaker) -> None:
    """The snapshot (for health output) shows the state, the failures in a row and the error's first line."""
    _fail(breaker, 3)
    assert breaker.snapshot() == {
        "state": "open",
        "consecutive_failures": 3,
        "last_error": "ConnectionRefusedError: connection refused",
    }


def test_defaults_open_at_the_third_failure_and_half_open_two_seconds_later(time: FakeTime) -> None:
    """Without arguments, three failures in a row open the breaker and a trial is let through after 2 s."""
    breaker = CircuitBreaker(clock=time.clock)
    _fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    _fail(breaker, 1)
    time.now += 1.999
    assert breaker.state is BreakerState.OPEN
    time.now += 0.001
    assert breaker.state is BreakerState.HALF_OPEN


def test_half_open_exactly_at_reset_after(breaker: CircuitBreaker, time: FakeTime) -> None:
    """The trial is let through at reset_after to the instant, not a tick later."""
    _fail(breaker, 3)
    time.now += 2.0
    breaker.before_call()
    assert breaker.state is BreakerState.HALF_OPEN


def test_a_new_breaker_reports_nothing_wrong(breaker: CircuitBreaker) -> None:
    """A new breaker's snapshot: closed, no failures, no error."""
    assert breaker.snapshot() == {"state": "closed", "consecutive_failures": 0, "last_error": None}


def test_snapshot_names_the_half_open_state(breaker: CircuitBreaker, time: FakeTime) -> None:
    """Half-open is reported as half_open, open as open."""
    _fail(breaker, 3)
    assert breaker.snapshot()["state"] == "open"
    time.now += 2.0
    assert breaker.snapshot()["state"] == "half_open"


def test_failed_probes_add_up(breaker: CircuitBreaker) -> None:
    """Each failed probe counts one more failure in a row, on top of failed calls."""
    _fail(breaker, 1)
    breaker.probe_failed(ConnectionRefusedError("refused"))
    breaker.probe_failed(ConnectionRefusedError("refused"))
    assert breaker.snapshot()["consecutive_failures"] == 3


def test_a_failed_probe_keeps_the_moment_the_breaker_opened(breaker: CircuitBreaker, time: FakeTime) -> None:
    """retry_after still counts from the first opening when a probe fails later."""
    _fail(breaker, 3)
    time.now += 1.5
    breaker.probe_failed(ConnectionRefusedError("refused"))
    assert breaker.retry_after() == 1


def test_after_a_probe_closed_it_the_breaker_recovers_by_trial_again(
    breaker: CircuitBreaker, time: FakeTime
) -> None:
    """Once a probe closed a probe-held breaker, a later outage ends with a successful trial call."""
    breaker.probe_failed(ConnectionRefusedError("refused"))
    breaker.probe_succeeded()
    _fail(breaker, 3)
    time.now += 2.0
    breaker.before_call()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_breaker_cycles_through_several_outages(breaker: CircuitBreaker, time: FakeTime) -> None:
    """Open, failed trial, open again, successful trial, closed; then a new outage opens it once more."""
    _fail(breaker, 3)
    time.now += 2.0
    breaker.before_call()
    _fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    time.now += 2.0
    breaker.before_call()
    breaker.record_success()
    assert breaker.snapshot() == {"state": "closed", "consecutive_failures": 0, "last_error": None}
    _fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    _fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    time.now += 2.0
    breaker.before_call()
    with pytest.raises(ServiceUnavailable):
        breaker.before_call()
