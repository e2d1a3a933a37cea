import ast
import inspect
from pathlib import Path

import lastro

# What a service author writes routes, settings, errors and jobs with. A change here is an API change.
PUBLIC = [
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


def test_all_names_are_importable() -> None:
    """Every name in `lastro.__all__` exists on the package."""
    for name in lastro.__all__:
        assert hasattr(lastro, name), name


def test_each_name_is_looked_up_where_mypy_reads_it() -> None:
    """`lastro._EXPORTS` (where a name is imported at first use) names, for every name of `__all__`, the
    module the `TYPE_CHECKING` imports give it: what mypy checks is what runs."""
    tree = ast.parse(Path(lastro.__file__).read_text())
    (guarded,) = [node for node in tree.body if isinstance(node, ast.If)]
    typed = {
        alias.name: node.module
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert typed == lastro._EXPORTS
    assert set(typed) == set(lastro.__all__) - {"__version__"}


def test_public_surface_is_curated() -> None:
    """The package exports exactly `__all__`, sorted, and no internals (submodules aside)."""
    public = {
        name
        for name in dir(lastro)
        if not name.startswith("_") and not inspect.ismodule(getattr(lastro, name))
    }
    assert public == set(lastro.__all__) - {"__version__"}
    assert lastro.__all__ == sorted(lastro.__all__)


def test_public_surface_is_the_documented_list() -> None:
    """`lastro.__all__` is the list above: adding or removing a name is a deliberate change."""
    assert lastro.__all__ == PUBLIC


def test_utilities_stay_importable_from_their_modules() -> None:
    """What left the top level is still where it lives."""
    from lastro.encoding import dumps_json
    from lastro.files import sniff_image
    from lastro.health import HealthRegistry
    from lastro.tasks import BackgroundTasks

    assert all(callable(member) for member in (dumps_json, sniff_image, HealthRegistry, BackgroundTasks))


def test_the_package_is_marked_typed() -> None:
    """`py.typed` ships in the package, so mypy checks code that calls lastro (PEP 561)."""
    assert (Path(lastro.__file__).parent / "py.typed").is_file()
