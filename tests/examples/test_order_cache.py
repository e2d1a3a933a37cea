"""The orders service's cache of order reads, under a real `lastro serve` with 4 workers on SQLite.

Every worker holds the order after warming; a PATCH invalidates it through the broadcast before it
answers, so no GET after it, on whichever worker, returns the old version.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pydantic import ValidationError

from examples.orders.settings import OrdersSettings
from tests.examples.conftest import Api, orders_service
from tests.support.servers import ServeProcess, wait_for

WORKERS = 4
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    directory = tmp_path_factory.mktemp("order-cache")
    with orders_service("sqlite", directory, WORKERS=str(WORKERS), ORDER_CACHE_ENABLED="true") as server:
        wait_for(lambda: len(server.worker_pids()) == WORKERS, timeout=60)
        yield server


@pytest.fixture(scope="module")
def fresh() -> Iterator[httpx.Client]:
    """A client without keep-alive: each request opens a connection of its own, which whichever worker
    accepts. One for the module, since `httpx.get` builds a client (and its SSL context) per call: some
    40 ms each."""
    with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=20) as client:
        yield client


def fresh_get(fresh: httpx.Client, server: ServeProcess, api: Api, path: str) -> httpx.Response:
    """A GET on a new connection, so that successive ones spread over the workers."""
    return fresh.get(f"{server.url}{path}", headers=api.client.headers)


def cache_by_worker(
    fresh: httpx.Client, server: ServeProcess, seen: dict[int, dict[str, Any]]
) -> dict[int, dict[str, Any]]:
    """One more worker's `order_cache` check from `/health` (a new connection each time), into `seen`."""
    document = fresh.get(f"{server.url}/health").json()
    seen[document["pid"]] = document["checks"]["order_cache"]
    return seen


def every_worker(
    fresh: httpx.Client, server: ServeProcess, done: Any, *, warm: str | None = None, api: Api | None = None
) -> None:
    """Wait until `done(statistics)` holds for the order cache of each of the workers (warming on the way)."""
    seen: dict[int, dict[str, Any]] = {}

    def all_done() -> bool:
        if warm is not None and api is not None:
            for _ in range(4):
                assert fresh_get(fresh, server, api, warm).status_code == 200
        cache_by_worker(fresh, server, seen)
        pids = server.worker_pids()
        return len(pids) == WORKERS and all(pid in seen and done(seen[pid]) for pid in pids)

    wait_for(all_done, timeout=60, interval=0.01)


def test_after_a_patch_no_worker_returns_the_old_version(
    server: ServeProcess, api: Api, fresh: httpx.Client
) -> None:
    """Cached on all 4 workers, then PATCHed: 200 GETs on new connections all return the new version."""
    order = api.create().json()
    path = f"/api/orders/{order['id']}"
    every_worker(fresh, server, lambda cache: cache["hits"] >= 1, warm=path, api=api)
    patched = api.patch(path, json={"notes": "after"}, headers={"If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    new_version = patched.json()["version"]
    assert new_version == order["version"] + 1
    for _ in range(200):
        response = fresh_get(fresh, server, api, path)
        assert response.status_code == 200
        assert response.json()["version"] == new_version
        assert response.json()["notes"] == "after"
        assert response.headers["ETag"] == f'"{new_version}"'
    every_worker(fresh, server, lambda cache: cache["invalidations"] >= 1)


def test_a_hit_answers_the_same_bytes_and_headers_as_the_read(
    server: ServeProcess, api: Api, fresh: httpx.Client
) -> None:
    """Body, ETag and Content-Type of the cached answers equal the first, read from the database."""
    order = api.create(notes="ção €").json()
    path = f"/api/orders/{order['id']}"
    first = fresh_get(fresh, server, api, path)
    answers = [fresh_get(fresh, server, api, path) for _ in range(20)]
    for answer in answers:
        assert answer.content == first.content
        assert {name: answer.headers[name] for name in ("etag", "content-type", "content-length")} == {
            name: first.headers[name] for name in ("etag", "content-type", "content-length")
        }
    assert first.json() == order


def test_after_a_delete_no_worker_returns_the_order(
    server: ServeProcess, api: Api, fresh: httpx.Client
) -> None:
    """Cached on all 4 workers, then deleted: every GET after the 204 is a 404."""
    order = api.create().json()
    path = f"/api/orders/{order['id']}"
    every_worker(fresh, server, lambda cache: cache["hits"] >= 1, warm=path, api=api)
    assert api.delete(path).status_code == 204
    assert all(fresh_get(fresh, server, api, path).status_code == 404 for _ in range(40))


def test_another_tenant_never_reads_a_cached_order(
    server: ServeProcess, api: Api, fresh: httpx.Client
) -> None:
    """The key holds the tenant: an order cached for its tenant is a 404 for another."""
    order = api.create().json()
    path = f"/api/orders/{order['id']}"
    assert fresh_get(fresh, server, api, path).status_code == 200
    with api.new_tenant() as other:
        assert all(fresh_get(fresh, server, other, path).status_code == 404 for _ in range(8))


def test_without_the_setting_reads_are_not_cached(tmp_path: Path) -> None:
    """ORDER_CACHE_ENABLED unset: /health says the cache is off, and reads still answer."""
    with orders_service("sqlite", tmp_path) as server, Api.login(server.url, "admin", "admin") as api:
        order = api.create().json()
        assert api.get(f"/api/orders/{order['id']}").json() == order
        cache = httpx.get(f"{server.url}/health", timeout=20).json()["checks"]["order_cache"]
        assert (cache["status"], cache["enabled"]) == ("ok", False)


def test_health_shows_the_cache_as_a_non_critical_check(server: ServeProcess, fresh: httpx.Client) -> None:
    """`/health` lists `order_cache` with its backend, bounds and counters."""
    cache = fresh.get(f"{server.url}/health").json()["checks"]["order_cache"]
    assert cache["status"] == "ok"
    assert cache["backend"] == "broadcast"
    assert (cache["max_items"], cache["max_bytes"]) == (1000, 32 * 1024 * 1024)


@pytest.mark.redis
def test_with_redis_a_patch_is_seen_by_every_worker(tmp_path: Path, fresh: httpx.Client) -> None:
    """REDIS_URL set: the order is cached in Redis once for all workers; after a PATCH, only the new one."""
    service = f"lastro-test-{uuid.uuid4().hex[:8]}"
    settings = {
        "WORKERS": "2",
        "REDIS_URL": REDIS_URL,
        "SERVICE_NAME": service,
        "ORDER_CACHE_ENABLED": "true",
    }
    try:
        with (
            orders_service("sqlite", tmp_path, **settings) as server,
            Api.login(server.url, "admin", "admin") as api,
        ):
            order = api.create().json()
            path = f"/api/orders/{order['id']}"
            assert all(fresh_get(fresh, server, api, path).status_code == 200 for _ in range(10))
            with redis.Redis.from_url(REDIS_URL) as client:
                assert client.exists(f"lastro:{service}:cache:orders:1:{order['id']}")
            patched = api.patch(path, json={"notes": "after"}, headers={"If-Match": '"1"'})
            assert patched.status_code == 200, patched.text
            assert {fresh_get(fresh, server, api, path).json()["version"] for _ in range(40)} == {2}
            cache = httpx.get(f"{server.url}/health", timeout=20).json()["checks"]["order_cache"]
            assert (cache["backend"], cache["connected"]) == ("redis", True)
    finally:
        with redis.Redis.from_url(REDIS_URL) as client:
            keys = list(client.scan_iter(match=f"lastro:{service}:*"))
            if keys:
                client.delete(*keys)


def test_the_order_cache_settings_default_to_a_bounded_cache() -> None:
    """Off by default; when on, 1000 orders, 32 MiB, 300 s per worker."""
    settings = OrdersSettings()
    assert settings.ORDER_CACHE_ENABLED is False
    assert (settings.ORDER_CACHE_SIZE, settings.ORDER_CACHE_MAX_BYTES, settings.ORDER_CACHE_TTL) == (
        1000,
        32 * 1024 * 1024,
        300.0,
    )


@pytest.mark.parametrize(
    ("name", "value"), [("ORDER_CACHE_SIZE", 0), ("ORDER_CACHE_MAX_BYTES", 0), ("ORDER_CACHE_TTL", 0)]
)
def test_a_useless_order_cache_bound_is_refused(name: str, value: int) -> None:
    """A size, byte bound or TTL of 0 is refused with the setting's name."""
    with pytest.raises(ValidationError, match=name):
        OrdersSettings(**{name: value})
