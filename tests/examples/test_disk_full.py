"""A full disk under a real `lastro serve` of the orders app on SQLite: 507s, ready 503, few log lines, and
writes again once space is freed.

The database and the images live on a small tmpfs (needs root, else skipped); the service's log does not.
A filler file takes the rest of the space.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from lastro.db import sqlite
from lastro.errors import STORAGE_FULL_TYPE
from tests.examples.conftest import JSON_ORDER, SECRET_KEY, Api, is_problem, serve_orders
from tests.support.servers import ServeProcess, wait_for
from tests.support.tmpfs import fill, tmpfs

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * (256 * 1024)
WRITES = 40


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with tmpfs(tmp_path_factory.mktemp("disk-full") / "disk", size_mib=32) as directory:
        yield directory


@contextmanager
def _serve(directory: Path, disk: Path, **settings: str) -> Iterator[ServeProcess]:
    with serve_orders(
        directory,
        DATABASE_URL=f"sqlite:///{disk / 'orders.db'}",
        SECRET_KEY=SECRET_KEY,
        IMAGES_DIR=str(disk / "images"),
        **settings,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, disk: Path) -> Iterator[ServeProcess]:
    """Two workers on the tmpfs; ready turns 503 below 1 MiB free."""
    directory = tmp_path_factory.mktemp("disk-full-serve")
    with _serve(directory, disk, DISK_MIN_FREE_BYTES=str(1024 * 1024)) as service:
        yield service


@pytest.fixture(scope="module")
def admin(server: ServeProcess) -> Iterator[Api]:
    with Api.login(server.url, "admin", "admin") as api:
        yield api


@pytest.fixture
def filler(disk: Path, server: ServeProcess) -> Iterator[Callable[[], Path]]:
    """Fills the disk when called; the filler is removed after the test and ready is 200 again."""
    created: list[Path] = []

    def fill_disk() -> Path:
        created.append(fill(disk))
        return created[-1]

    yield fill_disk
    for path in created:
        path.unlink(missing_ok=True)
    wait_for(lambda: ready(server) == 200, timeout=15)


def write_many(api: Api, count: int = WRITES) -> list[httpx.Response]:
    """`count` order creations, 8 at a time, so some queue behind others and run batched."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: api.post("/api/orders", json=JSON_ORDER), range(count)))


def ready(server: ServeProcess) -> int:
    return httpx.get(f"{server.url}/health/ready", timeout=10).status_code


def integrity(disk: Path) -> str:
    connection = sqlite.driver().connect(str(disk / "orders.db"), timeout=10)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


def test_writes_on_a_full_disk_get_507_with_the_storage_full_type(
    filler: Callable[[], Path], admin: Api
) -> None:
    """Once the disk is full, every creation answers 507 problem+json of type storage-full, none 500."""
    admin.create()
    filler()
    write_many(admin, 10)  # the first may still fit in pages the WAL file already has
    responses = write_many(admin)
    assert [response.status_code for response in responses] == [507] * WRITES
    assert all(is_problem(response, 507) for response in responses)
    assert {response.json()["type"] for response in responses} == {STORAGE_FULL_TYPE}


def test_ready_is_503_while_the_disk_is_full_and_200_once_space_is_freed(
    filler: Callable[[], Path], server: ServeProcess
) -> None:
    """Ready answers 503 on a full disk, naming the disk check; 200 again after the filler is removed."""
    assert ready(server) == 200
    filled = filler()
    wait_for(lambda: ready(server) == 503, timeout=10)
    document = httpx.get(f"{server.url}/health", timeout=10).json()
    assert document["checks"]["disk"]["status"] == "error"
    assert document["checks"]["disk"]["free_bytes"] < 1024 * 1024
    filled.unlink()
    wait_for(lambda: ready(server) == 200, timeout=10)


def test_writes_succeed_again_and_nothing_is_corrupt_once_space_is_freed(
    disk: Path, filler: Callable[[], Path], admin: Api
) -> None:
    """After the filler is removed, creations answer 201 again, and the database passes integrity_check."""
    kept = admin.create().json()["id"]
    filled = filler()
    write_many(admin)
    assert integrity(disk) == "ok"
    filled.unlink()
    assert {response.status_code for response in write_many(admin, 10)} == {201}
    assert admin.get(f"/api/orders/{kept}").status_code == 200
    assert integrity(disk) == "ok"


def test_a_full_disk_logs_a_few_lines_not_one_per_request(
    filler: Callable[[], Path], server: ServeProcess, admin: Api
) -> None:
    """Hundreds of refused writes leave fewer than 100 log lines besides the access lines, no traceback."""
    filler()
    for _ in range(5):
        write_many(admin)
    assert len(server.events("request")) >= 5 * WRITES
    others = [line for line in server.logs() if line.get("logger") != "lastro.access"]
    assert len(others) < 100, others[-20:]
    assert not [line for line in others if "Traceback" in str(line) or line.get("exception")]
    assert server.events("storage full")


def test_an_image_upload_on_a_full_disk_gets_507(disk: Path, filler: Callable[[], Path], admin: Api) -> None:
    """A FileStore write that finds no space answers 507 storage-full and leaves no partial file."""
    order_id = admin.create().json()["id"]
    filler()
    response = admin.post(f"/api/orders/{order_id}/images", files={"file": ("photo.png", PNG)})
    assert is_problem(response, 507)
    assert response.json()["type"] == STORAGE_FULL_TYPE
    assert "no space left for files" in response.json()["detail"]
    assert not list((disk / "images").glob("*.partial"))


def test_a_write_that_met_a_full_disk_holds_ready_at_503_until_space_is_back(tmp_path: Path) -> None:
    """With DISK_MIN_FREE_BYTES=0, a refused write alone turns ready 503, until the filler is removed."""
    with (
        tmpfs(tmp_path / "disk", size_mib=32) as disk,
        _serve(tmp_path, disk, WORKERS="1", DISK_MIN_FREE_BYTES="0") as server,
        Api.login(server.url, "admin", "admin") as admin,
    ):
        admin.create()
        filler = fill(disk)
        assert ready(server) == 200
        responses = write_many(admin, 10)
        assert 507 in {response.status_code for response in responses}
        assert ready(server) == 503
        detail = httpx.get(f"{server.url}/health", timeout=10).json()["checks"]["disk"]
        assert "storage_full" in detail
        filler.unlink()
        wait_for(lambda: ready(server) == 200, timeout=5)
        admin.create()
