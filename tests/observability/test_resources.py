"""`ProcessSampler`: a process's memory, CPU, threads and descriptors."""

from __future__ import annotations

import os
import sys

from lastro.observability.resources import ProcessSampler
from tests.support.clock import FakeTime


def test_this_process_is_sampled() -> None:
    """Its pid, some memory, a thread at least, and open descriptors where they can be counted."""
    sample = ProcessSampler().sample()
    assert sample.pid == os.getpid()
    assert sample.rss_bytes > 0
    assert 0 < sample.rss_percent < 100
    assert sample.threads >= 1
    assert sample.open_fds > 0 if sys.platform != "win32" else sample.open_fds == -1
    assert sample.age_seconds >= 0


def test_cpu_percent_is_measured_between_two_samples() -> None:
    """The first sample has no interval to measure over; the next one divides by the clock's seconds."""
    time = FakeTime()
    sampler = ProcessSampler(clock=time.clock)
    first = sampler.sample()
    sum(n * n for n in range(300_000))  # some CPU between the samples
    time.now += 1000.0
    second = sampler.sample()
    assert first.cpu_percent == 0.0
    assert 0.0 <= second.cpu_percent < 1.0  # a fraction of a second of CPU over 1,000 s
    assert second.cpu_seconds >= first.cpu_seconds
