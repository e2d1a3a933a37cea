"""The package's one-way structure: each layer imports only the layers below it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import lastro
from tests.support.interpreter import fresh_python_prints

PACKAGE = Path(lastro.__file__).parent


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py")) if folder else sorted(PACKAGE.rglob("*.py"))


def names(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(PACKAGE)) for path in paths]


def reaching(path: Path, prefixes: tuple[str, ...]) -> set[str]:
    return {name for name in imports_of(path) if name == prefixes or name.startswith(prefixes)}


@pytest.mark.parametrize("path", modules(""), ids=names(modules("")))
def test_the_library_never_imports_the_examples(path: Path) -> None:
    """lastro knows no orders: nothing under lastro/ imports examples/."""
    assert not reaching(path, ("examples",))


@pytest.mark.parametrize("path", modules(""), ids=names(modules("")))
def test_the_library_never_imports_its_tooling(path: Path) -> None:
    """The test and benchmark harnesses are no part of the product: nothing under lastro/ imports tests/
    or benchmarks/."""
    assert not reaching(path, ("tests", "benchmarks"))


ROOT = PACKAGE.parent
HARNESS = ROOT / "tests" / "support" / "process.py"
BENCHMARKS = sorted((ROOT / "benchmarks").rglob("*.py"))
TESTS = sorted(path for path in (ROOT / "tests").rglob("*.py") if "benchmarks" not in path.parts)


def test_the_server_harness_stands_alone() -> None:
    """tests/support/process.py, which tests and benchmarks share, imports only the standard library."""
    assert {name.split(".")[0] for name in imports_of(HARNESS)} <= {*sys.stdlib_module_names, "__future__"}


@pytest.mark.parametrize("path", BENCHMARKS, ids=[str(path.relative_to(ROOT)) for path in BENCHMARKS])
def test_the_benchmarks_take_only_the_harness_from_the_tests(path: Path) -> None:
    """benchmarks/ starts its servers with the tests' harness and imports nothing else of tests/."""
    assert reaching(path, ("tests",)) <= {"tests.support.process"}


@pytest.mark.parametrize("path", TESTS, ids=[str(path.relative_to(ROOT)) for path in TESTS])
def test_only_the_benchmark_tests_import_the_benchmarks(path: Path) -> None:
    """Imports between tests/ and benchmarks/ go one way: outside tests/benchmarks/, no test imports
    benchmarks/."""
    assert not reaching(path, ("benchmarks",))


@pytest.mark.parametrize("path", modules("db"), ids=names(modules("db")))
def test_the_data_layer_knows_nothing_of_http(path: Path) -> None:
    """lastro.db imports neither FastAPI, Starlette nor lastro's HTTP and app modules."""
    assert not reaching(path, ("fastapi", "starlette", "lastro.http", "lastro.app", "lastro.units"))


@pytest.mark.parametrize("path", modules("db"), ids=names(modules("db")))
def test_the_data_layer_knows_nothing_of_tracing(path: Path) -> None:
    """lastro.db imports no OpenTelemetry and no lastro tracing: a unit's span comes through the
    `unit_spans` hook the lifecycle hands to `Transactions`."""
    assert not reaching(path, ("opentelemetry", "lastro.observability.tracing", "lastro.http.tracing"))


@pytest.mark.parametrize("path", modules("http"), ids=names(modules("http")))
def test_middleware_never_reaches_routes_or_the_database(path: Path) -> None:
    """lastro.http imports no database module and nothing above it."""
    assert not reaching(path, ("lastro.db", "lastro.app", "lastro.units", "lastro.lifecycle", "sqlalchemy"))


@pytest.mark.parametrize("path", modules("ratelimit"), ids=names(modules("ratelimit")))
def test_rate_limiting_knows_nothing_of_http(path: Path) -> None:
    """lastro.ratelimit counts and decides; the HTTP layer (lastro.rate_limits, lastro.http) calls it."""
    assert not reaching(
        path, ("fastapi", "starlette", "lastro.http", "lastro.app", "lastro.rate_limits", "lastro.units")
    )


@pytest.mark.parametrize("path", modules("coordination"), ids=names(modules("coordination")))
def test_coordination_knows_nothing_of_http(path: Path) -> None:
    """lastro.coordination (leases, jobs, broadcast, caches) rests on the database and the seam; routes
    and middleware call it, never the other way round."""
    assert not reaching(
        path, ("fastapi", "starlette", "lastro.http", "lastro.app", "lastro.units", "lastro.lifecycle")
    )


@pytest.mark.parametrize("path", modules("db"), ids=names(modules("db")))
def test_the_data_layer_knows_nothing_of_coordination(path: Path) -> None:
    """lastro.db runs units of work; lastro.coordination builds on it, never the other way round."""
    assert not reaching(path, ("lastro.coordination",))


# `import lastro` imports each public name on first use: these use them all.
EVERY_NAME = "import sys, lastro; [getattr(lastro, name) for name in lastro.__all__]"


def test_the_command_loads_no_framework_until_a_command_needs_it() -> None:
    """`lastro --help`, `lastro deploy`, `lastro loadtest`: neither FastAPI, SQLAlchemy nor uvicorn is loaded
    by the command group, by `import lastro`, or by these commands' modules."""
    code = (
        "import sys, lastro, lastro.cli, lastro.cli.deploy, lastro.cli.loadtest; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'sqlalchemy', 'uvicorn'}))"
    )
    assert fresh_python_prints(code) == "[]"


def test_importing_lastro_loads_no_opentelemetry_sdk() -> None:
    """`import lastro` loads neither the OpenTelemetry SDK nor lastro's tracing middleware: only a service
    with TRACING on pays for them."""
    code = (
        f"{EVERY_NAME}; "
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'lastro.http.tracing'))))"
    )
    assert fresh_python_prints(code) == "[]"


def test_importing_lastro_loads_no_redis_client() -> None:
    """`import lastro` loads neither redis nor limits: only a service with REDIS_URL pays for them."""
    code = f"{EVERY_NAME}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'limits')))"
    assert fresh_python_prints(code) == "[]"


@pytest.mark.parametrize("path", modules("observability"), ids=names(modules("observability")))
def test_observability_knows_nothing_of_http_or_the_database(path: Path) -> None:
    """lastro.observability counts, samples and computes (the dashboard's figures too); the middleware and
    the routes (lastro.http, lastro.dashboard) call it, never the other way round."""
    assert not reaching(
        path,
        ("fastapi", "starlette", "sqlalchemy", "lastro.http", "lastro.db", "lastro.app", "lastro.dashboard"),
    )


@pytest.mark.parametrize("path", modules("serve"), ids=names(modules("serve")))
def test_the_server_never_imports_the_application(path: Path) -> None:
    """lastro.serve loads `MODULE:APP` by name in each worker: it imports no application module itself."""
    assert not reaching(path, ("lastro.app", "lastro.units", "lastro.lifecycle", "examples"))


BELOW_THE_COMMAND = [
    path for path in modules("") if not {"cli", "serve"} & set(path.relative_to(PACKAGE).parts)
]


@pytest.mark.parametrize("path", BELOW_THE_COMMAND, ids=names(BELOW_THE_COMMAND))
def test_only_the_command_imports_the_server(path: Path) -> None:
    """Nothing but the command (lastro/cli/) imports lastro.serve, so an application never loads uvicorn's
    supervisor."""
    assert not reaching(path, ("lastro.serve",))


OPS_WRITERS = [path for path in modules("ops") if "doctor" not in path.relative_to(PACKAGE).parts]


@pytest.mark.parametrize("path", OPS_WRITERS, ids=names(OPS_WRITERS))
def test_ops_rests_on_the_settings_alone(path: Path) -> None:
    """lastro.ops writes files for other tools from the settings: of lastro it imports settings, errors and
    the pool arithmetic (and itself), nothing that serves."""
    outside = {name for name in reaching(path, ("lastro",)) if not name.startswith("lastro.ops")}
    # lastro.db.pools is arithmetic: a compose file's pools are the ones `lastro serve` would size.
    assert outside <= {"lastro.errors", "lastro.settings", "lastro.db", "lastro.db.pools"}


# What `lastro doctor` weighs the settings with: the worker formula and the database layer's own rules (the
# SQLite version guard, the pool sizes, the URL), so that it judges exactly as `lastro serve` would.
DOCTOR_READS = {"lastro.errors", "lastro.settings", "lastro.workers", "lastro.db.sqlite", "lastro.db.engine"}


@pytest.mark.parametrize("path", modules("ops/doctor"), ids=names(modules("ops/doctor")))
def test_the_doctor_reads_the_rules_it_checks_and_nothing_that_serves(path: Path) -> None:
    """lastro.ops.doctor imports, of lastro, only the settings, the worker formula and the database
    layer's rules (and itself): no HTTP, no application, no server."""
    outside = {name for name in reaching(path, ("lastro",)) if not name.startswith("lastro.ops.doctor")}
    assert outside <= DOCTOR_READS


def test_the_doctor_is_no_part_of_a_running_service() -> None:
    """Starting an application (`lastro.app`, `lastro.lifecycle`) loads nothing of lastro.ops.doctor."""
    code = (
        "import sys, lastro.app, lastro.lifecycle; "
        "print(sorted(m for m in sys.modules if m.startswith('lastro.ops')))"
    )
    assert fresh_python_prints(code) == "[]"


@pytest.mark.parametrize("path", modules("backup"), ids=names(modules("backup")))
def test_backup_rests_on_the_data_layer_never_on_http(path: Path) -> None:
    """lastro.backup (a capability the service schedules, not a deploy tool) rests on the settings, the
    errors, the data layer and the logs; it never imports HTTP, the app, the coordination seam or ops."""
    outside = {name for name in reaching(path, ("lastro",)) if not name.startswith("lastro.backup")}
    allowed = ("lastro.settings", "lastro.errors", "lastro._version", "lastro.db", "lastro.observability")
    assert all(name.startswith(allowed) for name in outside), outside
    assert not reaching(path, ("fastapi", "starlette"))


BACKUP_USERS = {"cli", "backup"}
BELOW_THE_BACKUP = [
    path
    for path in modules("")
    if not BACKUP_USERS & set(path.relative_to(PACKAGE).parts) and path.name != "lifecycle.py"
]


@pytest.mark.parametrize("path", BELOW_THE_BACKUP, ids=names(BELOW_THE_BACKUP))
def test_only_the_command_and_start_up_import_backup(path: Path) -> None:
    """Only the command and start-up (which schedules the job) import lastro.backup: the data layer and
    everything under it know nothing of it."""
    assert not reaching(path, ("lastro.backup",))


BELOW_THE_OPS = [path for path in modules("") if not {"cli", "ops"} & set(path.relative_to(PACKAGE).parts)]


@pytest.mark.parametrize("path", BELOW_THE_OPS, ids=names(BELOW_THE_OPS))
def test_only_the_command_imports_ops(path: Path) -> None:
    """Nothing but the command (lastro/cli/) imports lastro.ops: a service never loads its deploy
    templates."""
    assert not reaching(path, ("lastro.ops",))


BOTTOM = {
    "errors.py": set(),
    "settings.py": {"lastro.errors"},
    "workers.py": {"lastro.errors", "lastro.settings"},
}


@pytest.mark.parametrize("name", sorted(BOTTOM))
def test_errors_settings_and_workers_stand_at_the_bottom(name: str) -> None:
    """errors imports nothing of lastro; settings only errors; workers (both sides of the worker
    handshake) only those two."""
    assert reaching(PACKAGE / name, ("lastro",)) <= BOTTOM[name]


def test_importing_lastro_loads_no_server() -> None:
    """`import lastro` (what an application does) loads neither lastro.serve nor uvicorn's supervisor."""
    code = (
        "import sys, lastro; "
        "print(sorted(m for m in sys.modules if m.startswith(('lastro.serve', 'uvicorn.supervisors'))))"
    )
    assert fresh_python_prints(code) == "[]"


BELOW_THE_LOADTEST = [
    path for path in modules("") if not {"cli", "loadtest"} & set(path.relative_to(PACKAGE).parts)
]


@pytest.mark.parametrize("path", BELOW_THE_LOADTEST, ids=names(BELOW_THE_LOADTEST))
def test_only_the_command_imports_the_loadtest(path: Path) -> None:
    """Nothing but the command (lastro/cli/) imports lastro.loadtest, and nothing outside lastro.loadtest
    imports Locust or gevent: a service never loads the load generator."""
    assert not reaching(path, ("lastro.loadtest", "locust", "gevent"))


@pytest.mark.parametrize("path", modules("loadtest"), ids=names(modules("loadtest")))
def test_the_loadtest_rests_on_errors_alone(path: Path) -> None:
    """lastro.loadtest measures a service from outside: of lastro it imports errors and the version, and
    only its scenario and runner modules import Locust."""
    outside = {name for name in reaching(path, ("lastro",)) if not name.startswith("lastro.loadtest")}
    assert outside <= {"lastro.errors", "lastro._version"}
    if path.name not in ("scenario.py", "runner.py"):
        assert not reaching(path, ("locust", "gevent"))


def test_the_command_line_loads_no_load_generator() -> None:
    """`import lastro.cli` (every command's start) loads neither Locust nor gevent: only a loadtest run does,
    in its own process."""
    code = (
        "import sys, lastro.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')))"
    )
    assert fresh_python_prints(code) == "[]"
