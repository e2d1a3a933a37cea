"""Each worker's slowest recent requests, for the dashboard: the top `keep` of the last `window` seconds.

The metrics middleware offers every request it has timed, but only after one float comparison with
`floor`: until the record is full the floor is 0, then it is the fastest request kept, so an ordinary
request costs nothing more. A sliding "top 10 of the last 5 minutes" cannot be kept exactly by one heap (a
request pushed out by slower but older ones would be missed once those expire), so the record keeps a
small heap per slice of the window (a minute by default): the top `keep` of the slices that overlap the
window hold the window's top `keep`. `rotate()`, which the resource monitor calls every MONITOR_INTERVAL,
opens a new slice when the current one is `window / slices` old and drops the slices out of the window.

Under `lastro serve` the monitor also writes the record to `slow-<pid>.json` in the metrics directory
(`publish`), where the dashboard of whichever worker answers reads those of every live worker
(`read_published`); the supervisor deletes a worker's file when it exits.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lastro.observability.metrics import METHODS, OBSERVER_ROUTES, OTHER_METHOD

__all__ = ["SlowestRequests", "publish", "read_published", "slow_file"]

# (seconds, tie-breaker, monotonic arrival, the request as the dashboard shows it)
Entry = tuple[float, int, float, dict[str, Any]]


class _Slice:
    __slots__ = ("heap", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.heap: list[Entry] = []


class SlowestRequests:
    def __init__(
        self,
        keep: int = 10,
        window: float = 300.0,
        slices: int = 5,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.keep = keep
        self.window = window
        self.span = window / slices
        self._clock = clock
        self._wall = wall
        self._order = itertools.count()
        self._slices: deque[_Slice] = deque([_Slice(clock())])
        self.floor = 0.0  # a request must take longer than this to be worth offering

    def offer(self, method: str, route: str, status: int, seconds: float, request_id: str | None) -> None:
        """Keep this request if it is among the slowest of the current slice; call it when
        `seconds > floor`."""
        if route in OBSERVER_ROUTES:
            return
        request = {
            "pid": os.getpid(),
            "method": method if method in METHODS else OTHER_METHOD,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "at": round(self._wall() - seconds, 3),  # when it arrived
            "request_id": request_id,
        }
        heap = self._slices[-1].heap
        entry = (seconds, next(self._order), self._clock() - seconds, request)
        if len(heap) < self.keep:
            heapq.heappush(heap, entry)
        else:
            heapq.heapreplace(heap, entry)
        if len(heap) == self.keep:
            self.floor = heap[0][0]

    def rotate(self) -> None:
        """Open a new slice once the current one has covered its span; forget the slices out of the window."""
        now = self._clock()
        if now - self._slices[-1].started >= self.span:
            self._slices.append(_Slice(now))
            self.floor = 0.0
        # A slice ends where the next one starts: drop it once that is out of the window.
        while len(self._slices) > 1 and self._slices[1].started <= now - self.window:
            self._slices.popleft()

    def recent(self) -> list[dict[str, Any]]:
        """The slowest requests that arrived in the last `window` seconds, slowest first."""
        self.rotate()
        since = self._clock() - self.window
        entries = [entry for part in self._slices for entry in part.heap if entry[2] >= since]
        return [entry[3] for entry in heapq.nlargest(self.keep, entries)]


def slow_file(directory: Path, pid: int) -> Path:
    return directory / f"slow-{pid}.json"


def publish(directory: Path, requests: list[dict[str, Any]]) -> None:
    """Write this worker's slowest requests where the other workers read them (atomically)."""
    target = slow_file(directory, os.getpid())
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_bytes(json.dumps(requests).encode())
    os.replace(temporary, target)


def read_published(directory: Path, skip: int, alive: Callable[[int], bool]) -> Iterable[dict[str, Any]]:
    """The requests every other live worker published (`skip`: this worker's pid, whose record is read in
    memory); the file of a worker that is gone is ignored."""
    for path in directory.glob("slow-*.json"):
        pid_text = path.stem.removeprefix("slow-")
        if not pid_text.isdigit() or int(pid_text) == skip or not alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError, ValueError):  # gone since the glob, or not ours
            found = json.loads(path.read_bytes())
            if isinstance(found, list):
                yield from (request for request in found if isinstance(request, dict))
