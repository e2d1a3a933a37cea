"""The supervisor's own loop (`lastro.serve.supervisor.Supervisor.run`), without workers."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from uvicorn.config import Config
from uvicorn.supervisors.multiprocess import SIGNALS

from lastro.serve.supervisor import Supervisor
from tests.support.signals import signals_kept

pytestmark = pytest.mark.posix


class Unstaffed(Supervisor):
    """The loop alone: no worker is started, so none has to stop."""

    def init_processes(self) -> None:
        pass


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    """A supervisor whose loop would look at its signal queue only once a minute."""
    with signals_kept(SIGNALS):
        supervisor = Unstaffed(Config("tests.serve.test_supervisor:app"), [])
        supervisor.tick = 60.0
        yield supervisor


def test_a_signal_queued_before_the_loop_is_handled_at_its_first_turn(supervisor: Supervisor) -> None:
    """A SIGTERM that arrived while the workers started stops the supervisor without waiting a tick."""
    signal.raise_signal(signal.SIGTERM)
    started = time.monotonic()
    supervisor.run()
    assert time.monotonic() - started < supervisor.tick / 2
    assert supervisor.should_exit.is_set()


def test_a_signal_wakes_the_sleeping_loop(supervisor: Supervisor) -> None:
    """A SIGTERM sent while the loop sleeps ends the sleep: the stop begins when it is asked for."""
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
    started = time.monotonic()
    supervisor.run()
    assert time.monotonic() - started < supervisor.tick / 2
    assert supervisor.should_exit.is_set()


def test_a_stopped_supervisor_ignores_another_sigterm(supervisor: Supervisor) -> None:
    """Once stopped, SIGTERM is ignored: a second one, sent while the interpreter exits, cannot kill it."""
    signal.raise_signal(signal.SIGTERM)
    supervisor.run()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
