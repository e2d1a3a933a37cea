"""lastro.files: atomic, durable writes off the event loop, safe names, image sniffing."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from lastro.errors import StorageFull
from lastro.files import FileStore, sniff_image
from tests.support.tmpfs import fill, tmpfs

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8


@pytest.mark.parametrize(
    ("data", "content_type"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp")],
)
def test_sniff_image_knows_png_jpeg_and_webp(data: bytes, content_type: str) -> None:
    """Each accepted format is recognised by its leading bytes."""
    assert sniff_image(data) == content_type


@pytest.mark.parametrize(
    "data", [b"", b"GIF89a....", b"<svg></svg>", b"RIFF\x10\x00\x00\x00WAVEfmt ", b"\x89PN"]
)
def test_sniff_image_refuses_anything_else(data: bytes) -> None:
    """Other formats, truncated headers and empty bodies are not images."""
    assert sniff_image(data) is None


def test_save_writes_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    """A saved file holds exactly the bytes given and no `.partial` file remains."""
    store = FileStore(tmp_path / "images")
    anyio.run(store.open)
    name = store.new_name(".png")
    assert anyio.run(store.save, name, PNG) == len(PNG)
    assert (tmp_path / "images" / name).read_bytes() == PNG
    assert [path.name for path in (tmp_path / "images").iterdir()] == [name]


def test_save_replaces_an_existing_file_whole(tmp_path: Path) -> None:
    """Saving under an existing name swaps the content in one step."""
    store = FileStore(tmp_path)
    anyio.run(store.open)
    anyio.run(store.save, "a.png", PNG)
    anyio.run(store.save, "a.png", JPEG)
    assert store.path("a.png").read_bytes() == JPEG


def test_open_removes_leftover_temporary_files(tmp_path: Path) -> None:
    """A crash mid-write leaves a `.partial` file; the next start removes it and keeps the rest."""
    (tmp_path / "kept.png").write_bytes(PNG)
    (tmp_path / "kept.png.ab12cd34.partial").write_bytes(PNG[:3])
    anyio.run(FileStore(tmp_path).open)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kept.png"]


def test_delete_ignores_files_already_gone(tmp_path: Path) -> None:
    """Deleting is idempotent: a missing file is not an error."""
    store = FileStore(tmp_path)
    anyio.run(store.save, "a.png", PNG)
    anyio.run(store.delete, "a.png", "never-there.png")
    assert not anyio.run(store.exists, "a.png")


def test_names_lists_stored_files_but_not_those_being_written(tmp_path: Path) -> None:
    """A `.partial` file (an upload in flight) is never listed."""
    store = FileStore(tmp_path)
    anyio.run(store.save, "b.png", PNG)
    anyio.run(store.save, "a.png", PNG)
    (tmp_path / "c.png.ab12cd34.partial").write_bytes(PNG[:3])
    assert anyio.run(store.names) == ["a.png", "b.png"]


def test_names_modified_before_leaves_recent_files_out(tmp_path: Path) -> None:
    """Only files last written before the given time are listed."""
    store = FileStore(tmp_path)
    anyio.run(store.save, "old.png", PNG)
    anyio.run(store.save, "new.png", PNG)
    os.utime(tmp_path / "old.png", (1000.0, 1000.0))
    os.utime(tmp_path / "new.png", (2000.0, 2000.0))
    assert anyio.run(store.names, 1500.0) == ["old.png"]


@pytest.mark.parametrize(
    "name", ["../escape.png", "a/b.png", ".hidden", "", "x.partial", "a" * 101, "a\x00b"]
)
def test_unsafe_storage_names_are_refused(tmp_path: Path, name: str) -> None:
    """Names that could leave the directory or collide with temporaries raise ValueError."""
    with pytest.raises(ValueError, match="not a valid storage name"):
        FileStore(tmp_path).path(name)


def test_new_names_are_unique_and_keep_the_suffix(tmp_path: Path) -> None:
    """Fresh storage names never repeat and end with the suffix asked for."""
    store = FileStore(tmp_path)
    names = {store.new_name(".webp") for _ in range(1000)}
    assert len(names) == 1000
    assert all(name.endswith(".webp") for name in names)


def test_a_full_disk_raises_storage_full_and_leaves_nothing(tmp_path: Path) -> None:
    """On a full filesystem, save raises StorageFull naming the directory, and no temporary file remains."""
    with tmpfs(tmp_path / "small", size_mib=1) as directory:
        store = FileStore(directory / "images")
        anyio.run(store.open)
        fill(directory)
        with pytest.raises(StorageFull, match="no space left for files under") as raised:
            anyio.run(store.save, "big.png", PNG + b"\0" * 256 * 1024)
        assert str(directory / "images") in raised.value.detail
        assert list((directory / "images").iterdir()) == []
