"""lastro: one call turns a FastAPI app into a production service, one command serves it with N workers.

The package exports what a service author writes routes, settings, errors and jobs with; the rest (the
JSON encoder, image sniffing, the health registry, ...) stays importable from its own module.

Each name is imported on first use (PEP 562), so that a command that needs neither FastAPI nor SQLAlchemy
(`lastro --help`, `lastro deploy`, `lastro loadtest`) or a module that imports `lastro.settings` does not
load them.
"""

from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

from lastro._version import __version__

if TYPE_CHECKING:
    from lastro.app import create_app, install
    from lastro.bulkhead import Bulkhead
    from lastro.cache import LRUCache
    from lastro.coordination.batch import BatchProcessor
    from lastro.coordination.cache import Cache, SharedCache, open_cache
    from lastro.coordination.events import Broadcast, Event, Subscription
    from lastro.coordination.jobs import Jobs
    from lastro.coordination.lazy import LazyLoader
    from lastro.coordination.schedule import Cron, Every
    from lastro.db.on_commit import on_commit
    from lastro.db.prepared import Prepared
    from lastro.db.statements import FilteredSelect, PartialUpdate
    from lastro.db.transactions import Transactions
    from lastro.errors import (
        BatchFull,
        CommitOutcomeUnknown,
        ConfigurationError,
        LastroError,
        RateLimited,
        RateLimitUnavailable,
        ServiceUnavailable,
        StartupError,
        StorageFull,
        UnsafeProductionSettings,
    )
    from lastro.files import FileStore
    from lastro.http.problem import ProblemResponse
    from lastro.http.request_id import current_request_id
    from lastro.http.responses import JSONResponse
    from lastro.ids import uuid4
    from lastro.observability.logging import get_logger
    from lastro.openapi import problems
    from lastro.pages import PageLimit, page_limit
    from lastro.rate_limits import check_rate_limit
    from lastro.ratelimit.policy import rate_limit
    from lastro.settings import Settings, get_settings
    from lastro.state import ServiceState
    from lastro.units import ReadUnit, UnitOfWork, WriteUnit

# Where each name lives, for `__getattr__`.
_EXPORTS: dict[str, str] = {
    "create_app": "lastro.app",
    "install": "lastro.app",
    "Bulkhead": "lastro.bulkhead",
    "LRUCache": "lastro.cache",
    "BatchProcessor": "lastro.coordination.batch",
    "Cache": "lastro.coordination.cache",
    "SharedCache": "lastro.coordination.cache",
    "open_cache": "lastro.coordination.cache",
    "Broadcast": "lastro.coordination.events",
    "Event": "lastro.coordination.events",
    "Subscription": "lastro.coordination.events",
    "Jobs": "lastro.coordination.jobs",
    "LazyLoader": "lastro.coordination.lazy",
    "Cron": "lastro.coordination.schedule",
    "Every": "lastro.coordination.schedule",
    "on_commit": "lastro.db.on_commit",
    "Prepared": "lastro.db.prepared",
    "FilteredSelect": "lastro.db.statements",
    "PartialUpdate": "lastro.db.statements",
    "Transactions": "lastro.db.transactions",
    "BatchFull": "lastro.errors",
    "CommitOutcomeUnknown": "lastro.errors",
    "ConfigurationError": "lastro.errors",
    "LastroError": "lastro.errors",
    "RateLimited": "lastro.errors",
    "RateLimitUnavailable": "lastro.errors",
    "ServiceUnavailable": "lastro.errors",
    "StartupError": "lastro.errors",
    "StorageFull": "lastro.errors",
    "UnsafeProductionSettings": "lastro.errors",
    "FileStore": "lastro.files",
    "ProblemResponse": "lastro.http.problem",
    "current_request_id": "lastro.http.request_id",
    "JSONResponse": "lastro.http.responses",
    "uuid4": "lastro.ids",
    "get_logger": "lastro.observability.logging",
    "problems": "lastro.openapi",
    "PageLimit": "lastro.pages",
    "page_limit": "lastro.pages",
    "check_rate_limit": "lastro.rate_limits",
    "rate_limit": "lastro.ratelimit.policy",
    "Settings": "lastro.settings",
    "get_settings": "lastro.settings",
    "ServiceState": "lastro.state",
    "ReadUnit": "lastro.units",
    "UnitOfWork": "lastro.units",
    "WriteUnit": "lastro.units",
}

__all__ = [
    "BatchFull",
    "BatchProcessor",
    "Broadcast",
    "Bulkhead",
    "Cache",
    "CommitOutcomeUnknown",
    "ConfigurationError",
    "Cron",
    "Event",
    "Every",
    "FileStore",
    "FilteredSelect",
    "JSONResponse",
    "Jobs",
    "LRUCache",
    "LastroError",
    "LazyLoader",
    "PageLimit",
    "PartialUpdate",
    "Prepared",
    "ProblemResponse",
    "RateLimitUnavailable",
    "RateLimited",
    "ReadUnit",
    "ServiceState",
    "ServiceUnavailable",
    "Settings",
    "SharedCache",
    "StartupError",
    "StorageFull",
    "Subscription",
    "Transactions",
    "UnitOfWork",
    "UnsafeProductionSettings",
    "WriteUnit",
    "__version__",
    "check_rate_limit",
    "create_app",
    "current_request_id",
    "get_logger",
    "get_settings",
    "install",
    "on_commit",
    "open_cache",
    "page_limit",
    "problems",
    "rate_limit",
    "uuid4",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lastro' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next lookup finds it without coming here
    return value


def __dir__() -> list[str]:
    """The public names, and the submodules imported so far."""
    loaded = {name for name, value in globals().items() if isinstance(value, ModuleType)}
    return sorted({*__all__, *loaded})
