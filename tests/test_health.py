"""HealthRegistry and the /health routes: liveness, readiness, the detailed document, check timeouts."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from lastro.health import CheckFailed, HealthCheck, HealthRegistry, health_router
from lastro.settings import get_settings
from lastro.state import ServiceState

pytestmark = pytest.mark.anyio

HUNG_TIMEOUT = 0.05


async def ok_check() -> dict[str, object]:
    return {"backend": "sqlite", "version": "3.51.3"}


async def silent_check() -> None:
    return None


async def failing_check() -> None:
    raise ConnectionError("connection refused")


def make_app(registry: HealthRegistry) -> FastAPI:
    app = FastAPI()
    app.state.lastro = ServiceState(settings=get_settings(), health=registry)
    app.include_router(health_router())
    return app


async def get(registry: HealthRegistry, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=make_app(registry))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


def registry_with(**checks: object) -> HealthRegistry:
    registry = HealthRegistry(version="1.2.3")
    for name, check in checks.items():
        registry.add(name, check)  # type: ignore[arg-type]
    return registry


async def test_live_answers_200_with_the_pid() -> None:
    """/health/live answers 200 with this process's pid."""
    response = await get(registry_with(database=ok_check), "/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "alive", "pid": os.getpid()}


async def test_live_stays_200_when_a_check_fails() -> None:
    """/health/live checks nothing: a failing dependency does not make it fail."""
    response = await get(registry_with(database=failing_check), "/health/live")
    assert response.status_code == 200


async def test_ready_answers_200_when_every_check_passes() -> None:
    """/health/ready is 200 and lists no failing check when all pass."""
    response = await get(registry_with(database=ok_check, cache=silent_check), "/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "failing": []}


async def test_ready_answers_503_naming_the_failing_check() -> None:
    """/health/ready is 503 and names the check that failed."""
    response = await get(registry_with(database=failing_check, cache=ok_check), "/health/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "failing": ["database"]}


async def test_hung_check_fails_fast_at_its_timeout() -> None:
    """A check that never answers is reported as failing once its timeout passes, not later."""
    never = asyncio.Event()

    async def hung_check() -> None:
        await never.wait()

    registry = HealthRegistry(version="1.2.3")
    registry.add("database", hung_check, timeout=HUNG_TIMEOUT)
    started = time.monotonic()
    response = await get(registry, "/health/ready")
    elapsed = time.monotonic() - started
    never.set()  # let the check task end with the test
    await registry.run()
    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]
    assert elapsed < 1.0


async def test_timed_out_check_says_how_long_it_waited() -> None:
    """The result of a timed-out check names the timeout."""
    never = asyncio.Event()

    async def hung_check() -> None:
        await never.wait()

    registry = HealthRegistry(version="1.2.3")
    registry.add("database", hung_check, timeout=HUNG_TIMEOUT)
    healthy, checks = await registry.run()
    never.set()
    await registry.run()
    assert not healthy
    assert checks["database"] == {"status": "error", "error": "no answer within 0.05 s"}


async def test_hung_check_is_not_started_again_while_it_runs() -> None:
    """A probe during a hung check waits on the same run instead of piling up another, and it heals."""
    never = asyncio.Event()
    starts = 0

    async def hung_check() -> None:
        nonlocal starts
        starts += 1
        await never.wait()

    registry = HealthRegistry(version="1.2.3")
    registry.add("database", hung_check, timeout=HUNG_TIMEOUT)
    first, _ = await registry.run()
    second, _ = await registry.run()
    starts_while_hung = starts
    never.set()
    healed, _ = await registry.run()
    assert (first, second, healed) == (False, False, True)
    assert starts_while_hung == 1


async def test_health_document_has_every_field() -> None:
    """/health has status, draining, timestamp, version, checks, uptime_seconds and pid."""
    registry = HealthRegistry(version="1.2.3", started_at=time.time() - 5)
    registry.add("database", ok_check)
    response = await get(registry, "/health")
    document = response.json()
    assert response.status_code == 200
    assert set(document) == {"status", "draining", "timestamp", "version", "checks", "uptime_seconds", "pid"}
    assert (document["status"], document["draining"]) == ("healthy", False)
    assert document["version"] == "1.2.3"
    assert document["pid"] == os.getpid()
    assert document["uptime_seconds"] >= 5
    assert abs(datetime.fromisoformat(document["timestamp"]) - datetime.now(UTC)).total_seconds() < 60


async def test_health_document_merges_each_checks_detail() -> None:
    """Each check's returned detail is merged into its entry beside status ok."""
    document = (await get(registry_with(database=ok_check, cache=silent_check), "/health")).json()
    assert document["checks"]["database"] == {"status": "ok", "backend": "sqlite", "version": "3.51.3"}
    assert document["checks"]["cache"] == {"status": "ok"}


async def test_health_document_is_503_when_unhealthy() -> None:
    """/health is 503 with status unhealthy and the failing check's error."""
    response = await get(registry_with(database=failing_check), "/health")
    document = response.json()
    assert response.status_code == 503
    assert document["status"] == "unhealthy"
    assert document["checks"]["database"] == {
        "status": "error",
        "error": "ConnectionError: connection refused",
    }


async def test_failing_non_critical_check_keeps_the_service_healthy() -> None:
    """A non-critical check failing is reported, but /health stays 200 and healthy."""
    registry = registry_with(database=ok_check)
    registry.add("connection_pool", failing_check, critical=False)
    response = await get(registry, "/health")
    document = response.json()
    assert response.status_code == 200
    assert document["status"] == "healthy"
    assert document["checks"]["connection_pool"]["status"] == "error"


async def test_failing_non_critical_check_keeps_the_service_ready() -> None:
    """A non-critical check failing leaves /health/ready at 200, while still listing it."""
    registry = registry_with(database=ok_check)
    registry.add("connection_pool", failing_check, critical=False)
    response = await get(registry, "/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "failing": ["connection_pool"]}


async def test_no_checks_is_healthy() -> None:
    """A registry without checks is healthy."""
    healthy, checks = await HealthRegistry(version="0").run()
    assert healthy
    assert checks == {}


async def test_a_check_failed_keeps_its_figures_beside_the_error() -> None:
    """A check raising CheckFailed is an error in /health and still shows the detail it carries."""

    async def low_disk() -> None:
        raise CheckFailed("5 bytes free", free_bytes=5)

    response = await get(registry_with(disk=low_disk), "/health")
    assert response.status_code == 503
    assert response.json()["checks"]["disk"] == {"status": "error", "error": "5 bytes free", "free_bytes": 5}


async def test_a_failing_check_shows_its_error_type_and_first_line() -> None:
    """A check's error is one line in /health: its type and the first line of its message."""

    async def chatty() -> None:
        raise OSError("could not connect to server\nIs the server running on that host?\n")

    response = await get(registry_with(database=chatty), "/health")
    assert response.json()["checks"]["database"] == {
        "status": "error",
        "error": "OSError: could not connect to server",
    }


async def test_ready_lists_the_failing_checks_by_name() -> None:
    """/health/ready names every failing check, sorted, whatever order they were added in."""
    response = await get(
        registry_with(queue=failing_check, cache=failing_check, db=ok_check), "/health/ready"
    )
    assert response.json() == {"status": "not ready", "failing": ["cache", "queue"]}


async def test_uptime_is_given_to_the_millisecond() -> None:
    """uptime_seconds is the time since the registry's start, rounded to three decimals."""
    registry = HealthRegistry(version="1", started_at=time.time() - 5.123456)
    uptime = (await get(registry, "/health")).json()["uptime_seconds"]
    assert 5.123 <= uptime < 6
    assert round(uptime, 3) == uptime


async def test_uptime_counts_from_the_registry_creation_by_default() -> None:
    """Without started_at, uptime starts when the registry is made."""
    document = (await get(HealthRegistry(version="1"), "/health")).json()
    assert 0 <= document["uptime_seconds"] < 60


def test_a_check_waits_two_seconds_by_default() -> None:
    """A HealthCheck made without a timeout gives its check 2 s, and is critical."""
    check = HealthCheck("database", ok_check)
    assert (check.timeout, check.critical) == (2.0, True)


async def test_a_drained_service_is_not_ready_and_says_draining() -> None:
    """While draining, ready answers 503 "draining" though every check passes; /health says so, 200."""
    registry = HealthRegistry(version="1")
    registry.add("database", ok_check)
    registry.draining = lambda: True
    ready = await get(registry, "/health/ready")
    detail = await get(registry, "/health")
    assert (ready.status_code, ready.json()) == (503, {"status": "draining", "failing": []})
    assert (detail.status_code, detail.json()["status"], detail.json()["draining"]) == (200, "draining", True)
