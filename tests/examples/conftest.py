"""End-to-end fixtures for the orders example: real `lastro serve` processes on SQLite and PostgreSQL.

Every suite that asks for `backend` runs twice, once per database. A PostgreSQL run gets a database of
its own (`CREATE DATABASE lastro_e2e_<hex>`), dropped with its connections at teardown.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.databases import postgres_url_for, scratch_database
from tests.support.process import stop_all
from tests.support.servers import ORDERS, ORDERS_MIGRATIONS, ServeProcess, migrate, serve_env

# Workers start slowly when other suites load this 2-core machine: 20 s was seen not to be enough.
READY_TIMEOUT = 60.0
SECRET_KEY = secrets.token_urlsafe(48)  # the services sign with it, so tests can forge tokens with it
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
# The longest write bursts run on SQLite in `make test` and on both in `make faults` (LASTRO_FAULTS=1): on
# PostgreSQL they repeat what the shorter tests show of its path, and the suite keeps within its time.
BURST_BACKENDS = BACKENDS if os.environ.get("LASTRO_FAULTS") == "1" else BACKENDS[:1]
JSON_ORDER: dict[str, Any] = {
    "customer": "ACME",
    "items": [{"sku": "A-1", "name": "Anvil", "quantity": 2, "unit_price": 9.5}],
}


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """A DATABASE_URL nobody else uses: a file under `directory`, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'orders.db'}"
        return
    with scratch_database("lastro_e2e") as name:
        yield postgres_url_for(name)


@contextmanager
def serve_orders(directory: Path, **settings: str) -> Iterator[ServeProcess]:
    """`tests.support.servers.serve` of the migrated orders app, with a longer start-up timeout."""
    env = migrate_orders(directory, **settings)
    server = ServeProcess(directory / "serve.log", [ORDERS, "--factory"], env)
    try:
        server.wait_ready(READY_TIMEOUT)
        yield server
    finally:
        server.stop()


def migrate_orders(directory: Path, **settings: str) -> dict[str, str]:
    """`lastro db upgrade` of the orders schema into the database `settings` name; the service's env."""
    env = serve_env(directory, MIGRATIONS_DIR=str(ORDERS_MIGRATIONS), **settings)
    migrate(env)
    return env


def start_orders(stack: ExitStack, machines: Sequence[tuple[Path, dict[str, str]]]) -> list[ServeProcess]:
    """The orders app, migrated already, under `lastro serve` in each (directory, settings): all started
    before any is waited for, so that their start-ups overlap; each stopped when `stack` closes."""
    started: list[ServeProcess] = []
    stack.callback(stop_all, started)  # their shutdowns overlap too
    for directory, settings in machines:
        env = serve_env(directory, MIGRATIONS_DIR=str(ORDERS_MIGRATIONS), **settings)
        started.append(ServeProcess(directory / "serve.log", [ORDERS, "--factory"], env))  # started already
    for server in started:
        server.wait_ready(READY_TIMEOUT)
    return list(started)  # the caller's to change: every one is stopped, whatever it does with the list


@contextmanager
def orders_service(backend: str, directory: Path, **settings: str) -> Iterator[ServeProcess]:
    """The orders app under `lastro serve`, migrated, on a fresh database of `backend`."""
    with fresh_database(backend, directory) as url:
        options = {"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY}
        if backend == "postgres":
            # Other suites share the server (max_connections=100): stay well inside it, whatever WORKERS is.
            options |= {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2"}
        options |= settings
        with serve_orders(directory, **options) as server:
            yield server


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="package")
def orders_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One 2-worker orders service per backend, shared by the suites whose tests do not conflict; stopped
    when tests/examples ends, so that no idle service spends the rest of the suite's CPU."""
    with orders_service(backend, tmp_path_factory.mktemp(f"orders-{backend}")) as server:
        yield server


@pytest.fixture(scope="module")
def api(server: ServeProcess) -> Iterator[Api]:
    """The module's own `server`, logged in as the development administrator (admin/admin)."""
    client = Api.login(server.url, "admin", "admin")
    yield client
    client.close()


class Api:
    """A synchronous client of one service, logged in as one user."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=base_url, headers=headers, timeout=20)
        self.token = token

    @classmethod
    def login(cls, base_url: str, username: str, password: str) -> Api:
        response = httpx.post(
            f"{base_url}/api/auth/token", data={"username": username, "password": password}, timeout=20
        )
        assert response.status_code == 200, response.text
        return cls(base_url, response.json()["access_token"])

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        return self.client.request(method, url, **options)

    def get(self, url: str, **options: Any) -> httpx.Response:
        return self.client.get(url, **options)

    def post(self, url: str, **options: Any) -> httpx.Response:
        return self.client.post(url, **options)

    def patch(self, url: str, **options: Any) -> httpx.Response:
        return self.client.patch(url, **options)

    def delete(self, url: str, **options: Any) -> httpx.Response:
        return self.client.delete(url, **options)

    def create(self, **fields: Any) -> httpx.Response:
        response = self.post("/api/orders", json={**JSON_ORDER, **fields})
        assert response.status_code == 201, response.text
        return response

    def new_tenant(self, prefix: str = "tenant") -> Api:
        """As an administrator: a new tenant with one ordinary user; that user's logged-in client."""
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        tenant = self.post("/api/admin/tenants", json={"name": name})
        assert tenant.status_code == 201, tenant.text
        password = secrets.token_urlsafe(12)
        user = self.post(
            "/api/admin/users",
            json={"username": name, "password": password, "tenant_id": tenant.json()["id"]},
        )
        assert user.status_code == 201, user.text
        return Api.login(str(self.client.base_url), name, password)

    def walk(self, page_size: int = 200, **filters: Any) -> list[dict[str, Any]]:
        """Every order a cursor walk returns, page after page."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"limit": page_size, **filters, **({"cursor": cursor} if cursor else {})}
            response = self.get("/api/orders", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            found += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return found


@pytest.fixture(scope="package")
def admin(orders_server: ServeProcess) -> Iterator[Api]:
    """The development administrator (tenant `default`, admin/admin) of the shared service."""
    api = Api.login(orders_server.url, "admin", "admin")
    yield api
    api.close()


@pytest.fixture
def tenant(admin: Api) -> Iterator[Api]:
    """A user of a tenant of its own: a test that lists orders sees only its own."""
    api = admin.new_tenant()
    yield api
    api.close()


def is_problem(response: httpx.Response, status: int) -> bool:
    """The response is an RFC 9457 problem document with this status."""
    return (
        response.status_code == status
        and response.headers["content-type"].startswith("application/problem+json")
        and response.json()["status"] == status
    )


def locked_lines(server: ServeProcess) -> list[dict[str, Any]]:
    return [line for line in server.logs() if "database is locked" in str(line)]
