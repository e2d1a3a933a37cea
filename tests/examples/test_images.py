"""Order images through a real `lastro serve`: upload, sniffing, limits, serving, deletion and purge."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.examples.conftest import Api, is_problem, orders_service
from tests.support.servers import ServeProcess, wait_for

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
JPEG = b"\xff\xd8\xff\xe0" + b"\x01" * 64
WEBP = b"RIFF\x40\x00\x00\x00WEBPVP8 " + b"\x02" * 64
MAX_BYTES = 4096


@pytest.fixture(scope="module")
def images_dir(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp(f"images-files-{backend}")  # each backend's service sweeps its own


@pytest.fixture(scope="module")
def server(
    backend: str, images_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """An orders service that stores images under `images_dir` and purges deleted orders at once."""
    settings = {
        "IMAGES_DIR": str(images_dir),
        "IMAGE_MAX_BYTES": str(MAX_BYTES),
        "MAX_BODY_BYTES": str(4 * MAX_BYTES),
        "PURGE_AFTER_DAYS": "0",
        "CLEANUP_INTERVAL_SECONDS": "0.5",
        "ORPHAN_GRACE_SECONDS": "60",
    }
    with orders_service(backend, tmp_path_factory.mktemp(f"images-{backend}"), **settings) as service:
        yield service


@pytest.fixture
def order_id(api: Api) -> int:
    order_id: int = api.create().json()["id"]
    return order_id


def upload(api: Api, order_id: int, data: bytes, filename: str = "photo.bin") -> dict[str, object]:
    response = api.post(f"/api/orders/{order_id}/images", files={"file": (filename, data)})
    assert response.status_code == 201, response.text
    document: dict[str, object] = response.json()
    assert response.headers["location"] == document["url"]
    return document


@pytest.mark.parametrize(
    ("data", "content_type"), [(PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp")]
)
def test_multipart_upload_is_typed_by_content_and_served_back(
    api: Api, order_id: int, data: bytes, content_type: str
) -> None:
    """A multipart upload answers 201 with the sniffed type; GET returns the same bytes with that type."""
    image = upload(api, order_id, data, filename="misleading.txt")
    assert image["content_type"] == content_type
    assert image["size"] == len(data)
    served = api.get(str(image["url"]))
    assert served.status_code == 200
    assert served.headers["content-type"] == content_type
    assert served.content == data


def test_base64_upload_answers_201_and_serves_the_decoded_bytes(api: Api, order_id: int) -> None:
    """A JSON upload with base64 content is stored decoded."""
    body = {"filename": "photo.png", "content_base64": base64.b64encode(PNG).decode()}
    response = api.post(f"/api/orders/{order_id}/images/base64", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "image/png"
    assert api.get(response.json()["url"]).content == PNG


def test_a_file_that_is_not_an_image_gets_415(api: Api, order_id: int) -> None:
    """The declared name and type do not matter: a text file is refused by its content."""
    response = api.post(
        f"/api/orders/{order_id}/images", files={"file": ("photo.png", b"GIF89a not really", "image/png")}
    )
    assert is_problem(response, 415)


def test_an_image_over_the_size_setting_gets_413(api: Api, order_id: int) -> None:
    """An upload over IMAGE_MAX_BYTES is refused with 413 naming the setting."""
    response = api.post(
        f"/api/orders/{order_id}/images", files={"file": ("big.png", PNG + b"\0" * MAX_BYTES)}
    )
    assert is_problem(response, 413)
    assert "IMAGE_MAX_BYTES" in response.json()["detail"]


def test_a_base64_image_over_the_size_setting_gets_413(api: Api, order_id: int) -> None:
    """The base64 route applies the same limit to the decoded size."""
    body = {"filename": "big.png", "content_base64": base64.b64encode(PNG + b"\0" * MAX_BYTES).decode()}
    assert is_problem(api.post(f"/api/orders/{order_id}/images/base64", json=body), 413)


def test_a_body_over_max_body_bytes_gets_413_before_it_is_read(api: Api, order_id: int) -> None:
    """A request body over MAX_BODY_BYTES is refused by its Content-Length."""
    response = api.post(
        f"/api/orders/{order_id}/images", files={"file": ("huge.png", PNG + b"\0" * 8 * MAX_BYTES)}
    )
    assert is_problem(response, 413)
    assert "MAX_BODY_BYTES" in response.json()["detail"]


@pytest.mark.parametrize("content", ["not base64!", "QUJD=x", "", "QUJD٣", "é" * 8])
def test_invalid_base64_gets_422(api: Api, order_id: int, content: str) -> None:
    """Malformed, empty or non-ASCII base64 is a client error, never a 500."""
    body = {"filename": "x.png", "content_base64": content}
    response = api.post(f"/api/orders/{order_id}/images/base64", json=body)
    assert response.status_code in (415, 422)
    assert is_problem(response, response.status_code)


def test_an_upload_with_more_files_than_max_multipart_files_gets_400(api: Api, order_id: int) -> None:
    """Eleven files in one upload (MAX_MULTIPART_FILES is 10): 400 problem+json, and nothing stored."""
    files = [("file", (f"p{number}.png", PNG)) for number in range(11)]
    response = api.post(f"/api/orders/{order_id}/images", files=files)
    assert is_problem(response, 400)
    assert response.json()["detail"] == "Too many files. Maximum number of files is 10."
    assert api.get(f"/api/orders/{order_id}/images").json() == []


def test_an_upload_with_too_many_fields_gets_400(api: Api, order_id: int) -> None:
    """An image sent with 150 form fields beside it is refused at the 101st (MAX_MULTIPART_PARTS)."""
    fields = [(f"f{number}", (None, b"x")) for number in range(150)]  # within this server's MAX_BODY_BYTES
    response = api.post(f"/api/orders/{order_id}/images", files=[("file", ("p.png", PNG)), *fields])
    assert is_problem(response, 400)
    assert response.json()["detail"] == "Too many fields. Maximum number of fields is 100."


def test_a_missing_file_field_gets_422(api: Api, order_id: int) -> None:
    """A multipart body without the `file` field is a validation error."""
    assert is_problem(api.post(f"/api/orders/{order_id}/images", files={"other": ("a.png", PNG)}), 422)


def test_uploading_to_an_unknown_order_gets_404_and_stores_nothing(api: Api, images_dir: Path) -> None:
    """An image for an order that does not exist leaves no file behind."""
    before = set(images_dir.iterdir())
    assert is_problem(api.post("/api/orders/999999/images", files={"file": ("a.png", PNG)}), 404)
    assert set(images_dir.iterdir()) == before


def test_another_tenant_cannot_read_upload_or_delete_images(api: Api, order_id: int) -> None:
    """Images are scoped to the order's tenant: everything else is a 404."""
    image = upload(api, order_id, PNG)
    other = api.new_tenant("images")
    try:
        assert is_problem(other.get(str(image["url"])), 404)
        assert is_problem(other.get(f"/api/orders/{order_id}/images"), 404)
        assert is_problem(other.post(f"/api/orders/{order_id}/images", files={"file": ("a.png", PNG)}), 404)
        assert is_problem(other.delete(str(image["url"])), 404)
    finally:
        other.close()
    assert api.get(str(image["url"])).status_code == 200


def test_listing_returns_every_image_of_the_order(api: Api, order_id: int) -> None:
    """GET on the collection lists the order's images in upload order."""
    first, second = upload(api, order_id, PNG), upload(api, order_id, JPEG)
    listed = api.get(f"/api/orders/{order_id}/images").json()
    assert [image["id"] for image in listed] == [first["id"], second["id"]]


def test_delete_removes_the_row_and_the_file(api: Api, order_id: int, images_dir: Path) -> None:
    """DELETE answers 204; the image is then 404 and its file is gone."""
    before = set(images_dir.iterdir())
    image = upload(api, order_id, PNG)
    (stored,) = set(images_dir.iterdir()) - before
    assert api.delete(str(image["url"])).status_code == 204
    assert is_problem(api.get(str(image["url"])), 404)
    assert not stored.exists()


def test_images_are_purged_with_their_order(api: Api, order_id: int, images_dir: Path) -> None:
    """Once a deleted order's retention passes, its images' files go with it."""
    before = set(images_dir.iterdir())
    upload(api, order_id, PNG)
    upload(api, order_id, WEBP)
    stored = set(images_dir.iterdir()) - before
    assert len(stored) == 2
    assert api.delete(f"/api/orders/{order_id}").status_code == 204
    wait_for(lambda: not any(path.exists() for path in stored), timeout=10)
    assert not any(path.exists() for path in stored)


def test_orphan_files_past_the_grace_are_removed_and_others_kept(
    api: Api, order_id: int, images_dir: Path
) -> None:
    """A file no image row refers to goes once older than ORPHAN_GRACE_SECONDS; a recent one and a
    referenced one stay."""
    kept = upload(api, order_id, PNG)
    stored = [path for path in images_dir.iterdir() if path.suffix == ".png"]
    old, recent = images_dir / "orphan-old.png", images_dir / "orphan-recent.png"
    old.write_bytes(PNG)
    recent.write_bytes(PNG)
    past = time.time() - 3600
    os.utime(old, (past, past))
    for path in stored:  # old enough, but referenced
        os.utime(path, (past, past))
    wait_for(lambda: not old.exists(), timeout=15)
    assert recent.exists()
    assert all(path.exists() for path in stored)
    assert api.get(str(kept["url"])).status_code == 200
