"""The machine's facts, and the CPU of the processes that listen on the target's port."""

from __future__ import annotations

import os
import socket

from lastro.loadtest.machine import ServerProcesses, cpu_percent_between, machine_facts
from tests.support.process import free_port


def test_the_facts_name_cpu_memory_and_versions() -> None:
    """CPU model and count, RAM, and the versions of Python, lastro and Locust."""
    facts = machine_facts()
    assert facts["cpu_count"] >= 1
    assert facts["ram_gb"] > 0
    assert {"cpu", "os", "python", "lastro", "locust"} <= facts.keys()


def test_the_process_listening_on_the_port_is_found() -> None:
    """A socket listening on a port makes its process part of the tree whose CPU is sampled."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        sample = ServerProcesses(listener.getsockname()[1]).cpu_seconds()
    assert os.getpid() in sample


def test_nothing_listening_gives_no_cpu() -> None:
    """A port nobody listens on has no processes, so no CPU figure rather than a zero."""
    sample = ServerProcesses(free_port()).cpu_seconds()
    assert sample == {}
    assert cpu_percent_between(sample, sample, 10.0) is None


def test_cpu_is_counted_for_processes_seen_at_both_ends() -> None:
    """3 CPU seconds over 2 s is 150% of a core; a process seen only once is left out."""
    assert cpu_percent_between({1: 10.0, 2: 5.0}, {1: 12.0, 2: 6.0, 3: 50.0}, 2.0) == 150.0
