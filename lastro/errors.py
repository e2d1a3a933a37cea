"""Lastro's exceptions: one base, a shallow hierarchy.

```
LastroError
├── ConfigurationError        a setting is missing, malformed or unsafe; the message names it and the fix
│   └── UnsafeProductionSettings
├── StartupError              a dependency did not answer at start-up (the database, Redis, ...)
└── ServiceUnavailable        a dependency is down while serving; answered as 503 problem+json
```

`one_line(error)` is how lastro quotes an error in a message or a log field.

This module imports nothing else from lastro, so every layer may raise these.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "LastroError",
    "ServiceUnavailable",
    "StartupError",
    "UnsafeProductionSettings",
    "one_line",
]


class LastroError(Exception):
    """Base class of every error lastro raises on purpose."""


class ConfigurationError(LastroError):
    """A setting is missing, malformed or unsafe."""


class UnsafeProductionSettings(ConfigurationError):
    """A setting that is fine in development is refused with `ENVIRONMENT=production`."""


class StartupError(LastroError):
    """A dependency did not answer while the service was starting."""


class ServiceUnavailable(LastroError):
    """A dependency is unavailable right now; the request may be retried later."""

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


def one_line(error: BaseException) -> str:
    """The first line of the error's message, or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
