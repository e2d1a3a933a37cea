"""Before the run: does the target answer, and how many workers does its /health detail report?

Plain `urllib`, run before Locust is imported: a refused connection is one error line, not a run of
failures.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from lastro.errors import one_line

__all__ = ["TargetUnreachable", "probe", "workers_of"]

TIMEOUT = 5.0


class TargetUnreachable(Exception):
    """The target did not answer HTTP at all."""


def probe(url: str) -> int:
    """The status of a GET of `url`; any HTTP answer (404 too) means the server is there."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        text = one_line(reason) if isinstance(reason, BaseException) else str(reason)
        raise TargetUnreachable(f"{url} did not answer: {text}") from None


def workers_of(origin: str) -> int | None:
    """The worker count a lastro service reports at /health (its detail, readable from loopback in
    development or with the operator token), or None."""
    try:
        with urllib.request.urlopen(f"{origin}/health", timeout=TIMEOUT) as response:
            document: Any = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    try:
        count = document["checks"]["workers"]["totals"]["workers"]
    except (KeyError, TypeError):
        return None
    return count if isinstance(count, int) and count > 0 else None
