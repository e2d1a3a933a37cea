"""lastro: one call turns a FastAPI app into a production service, one command serves it with N workers.

The package exports what a service author writes routes, settings, errors and jobs with; the rest (the
JSON encoder, image sniffing, the health registry, ...) stays importable from its own module.
"""

from lastro._version import __version__
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
from lastro.db.statements import FilteredSelect
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
from lastro.observability.logging import get_logger
from lastro.openapi import problems
from lastro.pages import PageLimit, page_limit
from lastro.rate_limits import check_rate_limit
from lastro.ratelimit.policy import rate_limit
from lastro.settings import Settings, get_settings
from lastro.state import ServiceState
from lastro.units import ReadUnit, UnitOfWork, WriteUnit

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
]
