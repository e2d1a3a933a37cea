"""The dashboard's figures over a recent window: requests per second, latency percentiles and error rates,
computed from the service's cumulative counters so that a script gets ready numbers.

A `Reading` is what the request counters and the latency histogram of every worker add up to at one
moment (observer routes left out: `OBSERVER_ROUTES`). The figures of a read are the difference between the
reading taken now and a baseline:

- the newest earlier reading at least `MIN_WINDOW` seconds old. Readings are kept for `KEEP_SECONDS` in
  `readings.json` in the metrics directory (written atomically) under `lastro serve`, in memory otherwise,
  so whichever worker answers, the window is "since the previous read by anyone": about 2 seconds with a
  dashboard open, the polling interval for a script that polls alone. The minimum keeps two dashboards
  open at once from dividing by a few milliseconds.
- else (the first read, or two reads within `MIN_WINDOW`), zero at the moment the counts started
  (`Metrics.started_at`): the figures are then averages over the service's whole run, and `window_seconds`
  says so.

Percentiles are read from the histogram's bucket deltas as Prometheus' `histogram_quantile` reads them:
linear interpolation inside the bucket where the rank falls, and the highest finite bound when it falls in
the `+Inf` bucket. They are as precise as the buckets (`LATENCY_BUCKETS`, 5 ms to 10 s).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lastro.observability.metrics import OBSERVER_ROUTES

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["KEEP_SECONDS", "MIN_WINDOW", "Reading", "ReadingHistory", "quantile", "window_figures"]

MIN_WINDOW = 1.0
KEEP_SECONDS = 60.0
MAX_READINGS = 64
READINGS_FILE = "readings.json"
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
Buckets = tuple[tuple[float, float], ...]  # (upper bound, cumulative count), ascending, +Inf last


@dataclass(frozen=True)
class Reading:
    at: float  # wall time, seconds since the epoch
    requests: float  # answered, every status
    statuses: dict[str, float]  # answered per status class: "2xx" ... "5xx"
    buckets: Buckets

    @classmethod
    def of(cls, families: Iterable[Metric], at: float) -> Reading:
        """The application's requests counted in `families` (`Metrics.families()`)."""
        requests = 0.0
        statuses = dict.fromkeys(STATUS_CLASSES, 0.0)
        buckets: dict[float, float] = {}
        for family in families:
            for sample in family.samples:
                if sample.labels.get("route") in OBSERVER_ROUTES:
                    continue
                if sample.name == "http_requests_total":
                    requests += sample.value
                    kind = f"{sample.labels.get('status', '')[:1]}xx"
                    if kind in statuses:
                        statuses[kind] += sample.value
                elif sample.name == "http_request_duration_seconds_bucket":
                    bound = float(sample.labels["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + sample.value
        return cls(at, requests, statuses, tuple(sorted(buckets.items())))

    @classmethod
    def zero(cls, at: float) -> Reading:
        return cls(at, 0.0, dict.fromkeys(STATUS_CLASSES, 0.0), ())

    def since(self, earlier: Reading) -> Reading | None:
        """What was counted between `earlier` and this reading; None if the counts do not follow on (a
        counter went down, the buckets changed): they are then not comparable."""
        bounds = [bound for bound, _ in self.buckets]
        before = dict(earlier.buckets) if earlier.buckets else dict.fromkeys(bounds, 0.0)
        if sorted(before) != bounds:
            return None
        buckets = tuple((bound, count - before[bound]) for bound, count in self.buckets)
        statuses = {kind: count - earlier.statuses.get(kind, 0.0) for kind, count in self.statuses.items()}
        delta = Reading(self.at - earlier.at, self.requests - earlier.requests, statuses, buckets)
        counts = [delta.requests, *statuses.values(), *(count for _, count in buckets)]
        return delta if min(counts, default=0.0) >= 0 else None

    def to_json(self) -> dict[str, Any]:
        # Infinity is not JSON, but the file is only ever read back by `from_json`.
        return {"at": self.at, "requests": self.requests, "statuses": self.statuses, "buckets": self.buckets}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reading:
        buckets = tuple((float(bound), float(count)) for bound, count in data["buckets"])
        statuses = {str(kind): float(count) for kind, count in data["statuses"].items()}
        return cls(float(data["at"]), float(data["requests"]), statuses, buckets)


def quantile(q: float, buckets: Buckets) -> float | None:
    """The q-quantile of the observations in cumulative `buckets`, as `histogram_quantile` estimates it;
    None when there is none."""
    if len(buckets) < 2 or buckets[-1][1] <= 0 or not math.isinf(buckets[-1][0]):
        return None
    rank = q * buckets[-1][1]
    index = next((i for i, (_, count) in enumerate(buckets[:-1]) if count >= rank), len(buckets) - 1)
    if index == len(buckets) - 1:  # in +Inf: the highest bound known
        return buckets[-2][0]
    start, (end, count) = 0.0, buckets[index]
    if index > 0:
        start, below = buckets[index - 1]
        count, rank = count - below, rank - below
    return start + (end - start) * (rank / count) if count else end


def window_figures(now: Reading, baseline: Reading | None, started_at: float) -> dict[str, Any]:
    """The document's window part: how long it is and what it held."""
    delta = now.since(baseline) if baseline is not None else None
    if delta is None:  # no comparable reading: the whole run
        delta = now.since(Reading.zero(min(started_at, now.at))) or Reading.zero(0.0)
    seconds = max(delta.at, 1e-3)
    answered = delta.requests
    latency = {name: quantile(q, delta.buckets) for name, q in QUANTILES.items()}
    return {
        "window_seconds": round(seconds, 3),
        "requests_per_second": round(answered / seconds, 2),
        "latency_ms": {
            name: None if value is None else round(value * 1000, 1) for name, value in latency.items()
        },
        "error_rate": round(delta.statuses["5xx"] / answered, 4) if answered else None,
        "client_error_rate": round(delta.statuses["4xx"] / answered, 4) if answered else None,
        "status_counts": {kind: int(count) for kind, count in delta.statuses.items()},
    }


class ReadingHistory:
    """The recent readings, shared by the workers through a file in the metrics directory (`directory`), or
    this process's own (`None`)."""

    def __init__(self, directory: Path | None) -> None:
        self.path = directory / READINGS_FILE if directory is not None else None
        self._kept: list[Reading] = []

    def exchange(self, now: Reading, started_at: float) -> Reading | None:
        """The baseline for `now` (None: no earlier reading fits), and `now` kept for the reads to come."""
        readings = [
            r for r in self._load() if started_at <= r.at <= now.at
        ]  # a previous run's, or clock skew
        baseline = next((r for r in reversed(readings) if r.at <= now.at - MIN_WINDOW), None)
        kept = [r for r in readings if r.at >= now.at - KEEP_SECONDS]
        if baseline is not None and baseline not in kept:
            kept.insert(0, baseline)  # a lone script polling every few minutes gets its own interval
        self._save([*kept, now][-MAX_READINGS:])
        return baseline

    def _load(self) -> list[Reading]:
        if self.path is None:
            return list(self._kept)
        try:
            data = json.loads(self.path.read_bytes())
            return sorted((Reading.from_json(item) for item in data["readings"]), key=lambda r: r.at)
        except (OSError, ValueError, KeyError, TypeError):  # none yet, or half of an old format: start over
            return []

    def _save(self, readings: list[Reading]) -> None:
        if self.path is None:
            self._kept = readings
            return
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(OSError):  # a full /dev/shm costs the next read its window, nothing more
            temporary.write_bytes(json.dumps({"readings": [r.to_json() for r in readings]}).encode())
            os.replace(temporary, self.path)
