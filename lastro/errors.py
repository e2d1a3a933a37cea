"""Lastro's exceptions: one base, a shallow hierarchy.

```
LastroError
├── ConfigurationError        a setting is missing, malformed or unsafe; the message names it and the fix
│   └── UnsafeProductionSettings
├── StartupError              the service cannot start: a dependency did not answer, or the schema is behind
├── ServiceUnavailable        a dependency is down while serving; answered as 503 problem+json
│   ├── RateLimitUnavailable  a fail-closed limit (login) cannot reach its shared store
│   └── BatchFull             a BatchProcessor held its most pending items longer than the caller would wait
├── RateLimited               a client went over a rate limit; answered as 429 with Retry-After
├── StorageFull               the disk under the database or the files is full; answered as 507
├── CommitOutcomeUnknown      a write's COMMIT was sent and its reply lost, and no later check could tell
│                             whether it was applied; answered as 504 with its own problem type, which
│                             never invites a blind retry
└── SubscriptionEnded         a broadcast subscription cannot go on; subscribe again, `since` the last id
    ├── SlowConsumer          the subscriber fell a whole queue behind, and was dropped
    └── EventsExpired         the events after `since` are no longer kept, or a broker outage lost them
```

`one_line(error)` is how lastro quotes an error in a message or a log field; `one_line_with_type(error)`
where the reader sees the error alone, without the code that caught it (`/health`, a task's status).

This module imports nothing else from lastro, so every layer may raise these.
"""

from __future__ import annotations

__all__ = [
    "COMMIT_OUTCOME_UNKNOWN_TYPE",
    "STORAGE_FULL_TYPE",
    "BatchFull",
    "CommitOutcomeUnknown",
    "ConfigurationError",
    "EventsExpired",
    "LastroError",
    "RateLimitUnavailable",
    "RateLimited",
    "ServiceUnavailable",
    "SlowConsumer",
    "StartupError",
    "StorageFull",
    "SubscriptionEnded",
    "UnsafeProductionSettings",
    "one_line",
    "one_line_with_type",
]


class LastroError(Exception):
    """Base class of every error lastro raises on purpose."""


class ConfigurationError(LastroError):
    """A setting is missing, malformed or unsafe."""


class UnsafeProductionSettings(ConfigurationError):
    """A setting that is fine in development is refused with `ENVIRONMENT=production`."""


class StartupError(LastroError):
    """The service cannot start: a dependency did not answer, or the database's schema is behind the code."""


class ServiceUnavailable(LastroError):
    """A dependency is unavailable right now; the request may be retried later."""

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class RateLimitUnavailable(ServiceUnavailable):
    """A limit that must not fail open (login) could not be checked: its shared store did not answer."""


class BatchFull(ServiceUnavailable):
    """A `BatchProcessor` holds its `max_pending` items, and none was flushed within the caller's wait."""


class RateLimited(LastroError):
    """A client went over a rate limit. `headers` carry `Retry-After` and the IETF `RateLimit` fields."""

    def __init__(self, detail: str, *, headers: dict[str, str]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


# Problem types (RFC 9457 `type`) of the answers that are not plain HTTP statuses; documented in the README.
COMMIT_OUTCOME_UNKNOWN_TYPE = "urn:lastro:problem:commit-outcome-unknown"
STORAGE_FULL_TYPE = "urn:lastro:problem:storage-full"


class StorageFull(LastroError):
    """The disk that holds the database or the service's files is full; nothing was written."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class CommitOutcomeUnknown(LastroError):
    """A write was sent to COMMIT, its reply was lost, and whether it was applied could not be learned.

    Never retried: re-running the write could apply it twice. The client should read the resource (or
    retry with the same `Idempotency-Key`) before writing again.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SubscriptionEnded(LastroError):
    """A broadcast subscription cannot go on: the subscriber subscribes again, `since` the last event id."""


class SlowConsumer(SubscriptionEnded):
    """The subscriber did not keep up: its queue filled, and it was dropped rather than let memory grow."""


class EventsExpired(SubscriptionEnded):
    """The events after `since` are no longer kept (past `EVENTS_RETENTION`), or an outage lost them."""


def one_line(error: BaseException) -> str:
    """The first line of the error's message, or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def one_line_with_type(error: BaseException) -> str:
    """`Type: first line of the message`, or the type's name alone when the message is empty."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
