"""The servers the `postgres` and `redis` markers need, and why their tests (and `posix` ones) skip where
they cannot run.

On Linux (here, CI's ubuntu job) the servers are part of the test setup: an unreachable one fails its
tests. On Windows (CI's windows job) GitHub's runners have no service containers, so a marked test skips
when its server does not answer, and says so.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlsplit

__all__ = ["POSIX_ONLY", "SERVICES", "reachable", "skip_reason"]

# Why a `posix` test skips on Windows: what it sends or reads has no Windows equivalent there.
POSIX_ONLY = (
    "needs POSIX signals or /proc (SIGHUP, SIGKILL, a graceful SIGTERM), which Windows lacks: there a "
    "service stops on CTRL_BREAK and restarts with `lastro reload`"
)

# marker -> (what, host, port)
SERVICES: dict[str, tuple[str, str, int]] = {
    "postgres": ("PostgreSQL", "127.0.0.1", 5432),
    "redis": ("Redis", "127.0.0.1", 6379),
}


def service_address(marker: str, postgres_url: str) -> tuple[str, str, int]:
    name, host, port = SERVICES[marker]
    if marker == "postgres":
        parts = urlsplit(postgres_url)
        host, port = parts.hostname or host, parts.port or port
    return name, host, port


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def skip_reason(
    markers: set[str], platform: str, postgres_url: str, answers: Callable[[str, int], bool] = reachable
) -> str | None:
    """Why a test with `markers` skips on `platform`; None when it runs (or fails: a Linux outage)."""
    if platform != "win32":
        return None
    if "posix" in markers:
        return POSIX_ONLY
    for marker in sorted(markers & set(SERVICES)):
        name, host, port = service_address(marker, postgres_url)
        if not answers(host, port):
            return (
                f"{name} is not reachable on {host}:{port}: Windows runners have no service containers; "
                f"the Linux job runs the {marker} tests"
            )
    return None
