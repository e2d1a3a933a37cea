"""The orders service in production: no diagnostics route, no documentation, an administrator only when
ADMIN_PASSWORD says so (tests/examples/test_admin.py: none without it), a weak ADMIN_PASSWORD refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from examples.orders.settings import OrdersSettings
from lastro import ConfigurationError, UnsafeProductionSettings, get_settings
from tests.examples.conftest import READY_TIMEOUT, SECRET_KEY, serve_orders
from tests.support.servers import ORDERS, ORDERS_MIGRATIONS, ServeProcess, migrate, serve_env

ADMIN_PASSWORD = "c0rrect-Horse-battery"
PRODUCTION = {"ENVIRONMENT": "production", "SECRET_KEY": SECRET_KEY, "WORKERS": "1"}
WEAK = (
    "ADMIN_PASSWORD must be at least 12 characters, not a repetition, in production: set it to the output of "
    "`python -c 'import secrets; print(secrets.token_urlsafe(16))'`, or unset it and run "
    "`python -m examples.orders.admin create-admin`"
)


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One production orders service with ADMIN_PASSWORD set, shared by the module's read-only tests."""
    with serve_orders(
        tmp_path_factory.mktemp("production"), ADMIN_PASSWORD=ADMIN_PASSWORD, **PRODUCTION
    ) as server:
        yield server


def login(server: ServeProcess, username: str, password: str) -> int:
    data = {"username": username, "password": password}
    return httpx.post(f"{server.url}/api/auth/token", data=data, timeout=20).status_code


def test_production_does_not_mount_the_ping_route(production: ServeProcess) -> None:
    """/api/ping, which holds a request for up to 30 s, answers 404 in production."""
    assert httpx.get(f"{production.url}/api/ping", timeout=20).status_code == 404


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_production_serves_no_documentation(production: ServeProcess, path: str) -> None:
    """The documentation FastAPI serves by default answers 404 in production."""
    assert httpx.get(f"{production.url}{path}", timeout=20).status_code == 404


def test_production_health_detail_answers_loopback(production: ServeProcess) -> None:
    """The health detail answers a client on loopback, the default HEALTH_NETWORKS."""
    assert httpx.get(f"{production.url}/health", timeout=20).json()["status"] == "healthy"


def test_admin_password_creates_the_first_administrator(production: ServeProcess) -> None:
    """With ADMIN_PASSWORD set, production creates admin with it; admin/admin does not log in."""
    assert login(production, "admin", ADMIN_PASSWORD) == 200
    assert login(production, "admin", "admin") == 401


def test_a_weak_admin_password_stops_serve_with_one_line(tmp_path: Path) -> None:
    """ADMIN_PASSWORD=admin in production: the worker logs one line naming the setting, serve exits 3."""
    env = serve_env(tmp_path, MIGRATIONS_DIR=str(ORDERS_MIGRATIONS), ADMIN_PASSWORD="admin", **PRODUCTION)
    migrate(env)
    server = ServeProcess(tmp_path / "serve.log", [ORDERS, "--factory"], env)
    try:
        assert server.process.wait(READY_TIMEOUT) == 3
    finally:
        server.stop()
    assert [line["level"] for line in server.events(WEAK)] == ["error"]
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


@pytest.mark.parametrize("password", ["admin", "short-pass1", "adminadminadmin", "aaaaaaaaaaaaaaaa"])
def test_weak_admin_passwords_are_refused_in_production(password: str) -> None:
    """Under 12 characters, or a repetition of a few, is one refusal naming ADMIN_PASSWORD and the fix."""
    with pytest.raises(UnsafeProductionSettings) as refused:
        get_settings(OrdersSettings, ADMIN_PASSWORD=password, **PRODUCTION)
    assert str(refused.value) == WEAK


def test_a_long_admin_password_is_accepted_in_production() -> None:
    """Twelve characters of six distinct ones or more pass."""
    settings = get_settings(OrdersSettings, ADMIN_PASSWORD="abcdef-abcde", **PRODUCTION)
    assert settings.bootstrap_admin_password == "abcdef-abcde"


def test_the_admin_refusal_joins_lastros_in_one_message() -> None:
    """A weak ADMIN_PASSWORD and DEBUG=true are both named, lastro's refusal first."""
    with pytest.raises(ConfigurationError) as refused:
        get_settings(OrdersSettings, ADMIN_PASSWORD="admin", DEBUG="true", **PRODUCTION)
    assert str(refused.value) == f"DEBUG=true is not allowed in production: set DEBUG=false; {WEAK}"


def test_development_bootstraps_admin_admin_by_default() -> None:
    """Development without ADMIN_PASSWORD creates admin with password admin; production creates none."""
    development = get_settings(OrdersSettings)
    production = get_settings(OrdersSettings, **PRODUCTION)
    assert (development.bootstrap_admin_password, production.bootstrap_admin_password) == ("admin", None)
