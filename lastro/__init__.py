"""lastro: one call turns a FastAPI app into a production service, one command serves it with N workers."""

from lastro._version import __version__
from lastro.app import create_app, install
from lastro.bulkhead import Bulkhead
from lastro.encoding import dumps_json
from lastro.errors import (
    ConfigurationError,
    LastroError,
    ServiceUnavailable,
    StartupError,
    UnsafeProductionSettings,
)
from lastro.files import FileStore, sniff_image
from lastro.health import HealthRegistry
from lastro.http.problem import ProblemResponse
from lastro.http.request_id import current_request_id
from lastro.observability.logging import get_logger
from lastro.settings import Settings, get_settings
from lastro.state import ServiceState
from lastro.tasks import BackgroundTasks
from lastro.units import ReadUnit, UnitOfWork, WriteUnit

__all__ = [
    "BackgroundTasks",
    "Bulkhead",
    "ConfigurationError",
    "FileStore",
    "HealthRegistry",
    "LastroError",
    "ProblemResponse",
    "ReadUnit",
    "ServiceState",
    "ServiceUnavailable",
    "Settings",
    "StartupError",
    "UnitOfWork",
    "UnsafeProductionSettings",
    "WriteUnit",
    "__version__",
    "create_app",
    "current_request_id",
    "dumps_json",
    "get_logger",
    "get_settings",
    "install",
    "sniff_image",
]
