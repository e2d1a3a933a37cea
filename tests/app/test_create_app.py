"""create_app(settings) end to end in-process: lifespan on a SQLite file, health, problem+json errors.

The ASGI lifespan is driven by hand (starlette's TestClient warns with plain httpx, and warnings are errors),
and requests go through httpx's ASGI transport.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text

from lastro import ServiceState, ServiceUnavailable, StartupError, UnsafeProductionSettings, create_app
from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.settings import Settings, get_settings
from lastro.units import ReadUnit
from lastro.workers import SCHEMA_CHECKED_ENV
from tests.support.interpreter import fresh_python_prints
from tests.support.lifespan import running

pytestmark = pytest.mark.anyio


class Item(BaseModel):
    name: str
    quantity: int


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return get_settings(DATABASE_URL=sqlite_url, SERVICE_VERSION="2.0.1", LOG_FORMAT="json", WORKERS=2)


def make_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.post("/items", status_code=201)
    async def create_item(item: Item) -> Item:
        return item

    @app.get("/answer")
    async def answer(unit: ReadUnit) -> dict[str, int]:
        value = await unit.run(lambda connection: connection.execute(text("SELECT 42")).scalar_one())
        return {"answer": value}

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    @app.get("/busy")
    async def busy() -> None:
        raise ServiceUnavailable("the payment provider is down", retry_after=9)

    return app


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_health_reports_the_database_pool_and_tasks(client: httpx.AsyncClient) -> None:
    """/health is 200 with the SQLite database, its pool, the background jobs, the disk, the WAL, the rate
    limits, the broadcast and every worker's resources."""
    response = await client.get("/health")
    document = response.json()
    assert response.status_code == 200
    assert document["status"] == "healthy"
    assert document["version"] == "2.0.1"
    checks = document["checks"]
    assert set(checks) == {
        "database",
        "connection_pool",
        "background_jobs",
        "periodic_jobs",
        "disk",
        "sqlite_wal",
        "rate_limits",
        "workers",
        "broadcast",
    }
    assert all(check["status"] == "ok" for check in checks.values())


async def test_health_database_check_names_sqlite_and_its_version(client: httpx.AsyncClient) -> None:
    """The database check reports the sqlite backend and the SQLite library version."""
    database = (await client.get("/health")).json()["checks"]["database"]
    assert database["backend"] == "sqlite"
    assert database["version"].count(".") == 2


async def test_health_connection_pool_has_its_figures(client: httpx.AsyncClient) -> None:
    """The connection_pool check reports size, checked in/out and overflow."""
    pool = (await client.get("/health")).json()["checks"]["connection_pool"]
    assert {"size", "checked_in", "checked_out", "overflow", "max_overflow"} <= set(pool)


async def test_health_background_jobs_lists_the_watchdog(client: httpx.AsyncClient) -> None:
    """The background_jobs check lists the database watchdog, running."""
    tasks = (await client.get("/health")).json()["checks"]["background_jobs"]["tasks"]
    assert tasks["database-watchdog"]["state"] == "running"


async def test_live_and_ready_answer_200(client: httpx.AsyncClient) -> None:
    """On a healthy service both probes answer 200."""
    assert (await client.get("/health/live")).status_code == 200
    assert (await client.get("/health/ready")).json() == {"status": "ready", "failing": []}


async def test_a_unit_of_work_reads_the_database(client: httpx.AsyncClient) -> None:
    """A route with a ReadUnit runs its query on the opened database."""
    assert (await client.get("/answer")).json() == {"answer": 42}


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    """Every response carries the X-Request-ID it was given."""
    response = await client.get("/health/live", headers={"X-Request-ID": "trace-0123456789"})
    assert response.headers["x-request-id"] == "trace-0123456789"


async def test_slow_request_seconds_sets_the_slow_request_warning(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A request longer than SLOW_REQUEST_SECONDS logs a slow-request warning naming its route."""
    app = create_app(get_settings(DATABASE_URL=sqlite_url, LOG_FORMAT="json", SLOW_REQUEST_SECONDS=0.001))

    @app.get("/nap")
    async def nap() -> None:
        await asyncio.sleep(0.005)

    transport = httpx.ASGITransport(app=app)
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/nap")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["route"] for line in lines if line.get("logger") == "lastro.slow"] == ["/nap"]


async def test_unknown_path_is_a_404_problem(client: httpx.AsyncClient) -> None:
    """A path no route matches answers 404 application/problem+json with the request id."""
    response = await client.get("/nowhere", headers={"X-Request-ID": "trace-0123456789"})
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert (body["type"], body["title"], body["status"]) == ("about:blank", "Not Found", 404)
    assert body["request_id"] == "trace-0123456789"


async def test_wrong_method_is_a_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    """A method the route does not accept answers 405 problem+json and keeps the Allow header."""
    response = await client.delete("/items")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["allow"] == "POST"


async def test_invalid_body_is_a_422_problem_with_errors(client: httpx.AsyncClient) -> None:
    """A body that fails validation answers 422 problem+json listing each error's loc, msg and type."""
    response = await client.post("/items", json={"name": "bolt", "quantity": "many"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["status"] == 422
    assert body["detail"] == "the request is not valid"
    (error,) = body["errors"]
    assert error["loc"] == ["body", "quantity"]
    assert set(error) == {"loc", "msg", "type"}


async def test_valid_body_is_accepted(client: httpx.AsyncClient) -> None:
    """A valid body reaches the route."""
    response = await client.post("/items", json={"name": "bolt", "quantity": 3})
    assert response.status_code == 201
    assert response.json() == {"name": "bolt", "quantity": 3}


async def test_unhandled_error_is_a_500_problem(client: httpx.AsyncClient) -> None:
    """A route that raises answers 500 problem+json without the exception text."""
    response = await client.get("/crash")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert "boom" not in response.text


async def test_service_unavailable_is_a_503_problem_with_retry_after(client: httpx.AsyncClient) -> None:
    """ServiceUnavailable answers 503 problem+json with its detail and Retry-After."""
    response = await client.get("/busy")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "9"
    assert response.json()["detail"] == "the payment provider is down"


async def test_application_lifespan_runs_with_the_database_open(settings: Settings) -> None:
    """The application's own lifespan runs inside lastro's: the database is open at its start-up."""
    seen: list[bool] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state: ServiceState = app.state.lastro
        seen.append(state.database is not None)
        yield
        seen.append(state.database is not None)

    async with running(create_app(settings, lifespan=lifespan)):
        pass
    assert seen == [True, True]


def test_fastapi_options_and_service_name_reach_the_app(settings: Settings) -> None:
    """The title defaults to SERVICE_NAME and the version to SERVICE_VERSION; options override."""
    app = create_app(settings, title="Orders API")
    assert (app.title, app.version) == ("Orders API", "2.0.1")


async def test_unreachable_database_fails_start_up() -> None:
    """A database that does not answer stops the start-up with StartupError naming DATABASE_URL."""
    settings = get_settings(DATABASE_URL="postgresql://postgres@127.0.0.1:1/test", DB_CONNECT_TIMEOUT=1)
    with pytest.raises(StartupError, match="DATABASE_URL"):
        async with running(create_app(settings)):
            pass


ORDERS_MIGRATIONS = Path(__file__).resolve().parents[2] / "examples" / "orders" / "migrations"


async def test_a_database_behind_the_migrations_fails_start_up(sqlite_url: str) -> None:
    """With MIGRATIONS_DIR holding migrations the database lacks, start-up names the command that fixes it."""
    settings = get_settings(DATABASE_URL=sqlite_url, MIGRATIONS_DIR=str(ORDERS_MIGRATIONS))
    with pytest.raises(StartupError, match="lastro db upgrade --migrations"):
        async with running(create_app(settings)):
            pass


async def test_the_schema_check_of_the_supervisor_is_trusted(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose supervisor checked this MIGRATIONS_DIR does not check again (nor load Alembic)."""
    monkeypatch.setenv(SCHEMA_CHECKED_ENV, str(ORDERS_MIGRATIONS.resolve()))
    settings = get_settings(DATABASE_URL=sqlite_url, MIGRATIONS_DIR=str(ORDERS_MIGRATIONS))
    async with running(create_app(settings)):
        pass


def test_unsafe_production_settings_are_refused() -> None:
    """create_app refuses settings that are unsafe in production."""
    settings = Settings(ENVIRONMENT="production", DEBUG=True, SECRET_KEY="k" * 48)
    with pytest.raises(UnsafeProductionSettings, match="DEBUG"):
        create_app(settings)


# A global tracer provider is set once per process: each case runs in an interpreter of its own.
NATIVE_SPANS = """
import asyncio, httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import lastro
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
app = lastro.create_app(lastro.Settings(ENVIRONMENT="development", LOG_LEVEL="warning"){options})
app.get("/")(lambda: {{}})
async def main():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
        assert (await client.get("/")).status_code == 200
asyncio.run(main())
print(len(exporter.get_finished_spans()))
"""


def test_fastapi_records_no_spans_of_its_own_under_a_global_provider() -> None:
    """With a global tracer provider set, a request through `create_app` gets no FastAPI spans."""
    assert fresh_python_prints(NATIVE_SPANS.format(options="")) == "0"


def test_fastapi_telemetry_can_be_turned_back_on() -> None:
    """`telemetry=` passed to `create_app` reaches FastAPI, whose spans then come back."""
    spans = fresh_python_prints(NATIVE_SPANS.format(options=', telemetry={"tracing": True}'))
    assert int(spans) > 0
