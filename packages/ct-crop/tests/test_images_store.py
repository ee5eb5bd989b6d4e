"""Images read from an object store (here a local HTTP server): the same pixels as from
the file, and a missing object or a transport error is an ImageLoadError like a bad file."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from ct_crop.images import FailureKind, ImageLoadError, load_image, open_image, read_image
from ct_io.storage import open_store
from ct_io.testing import FileServer


@pytest.fixture()
def server() -> Iterator[FileServer]:
    server = FileServer().start()
    yield server
    server.stop()


def test_bytes_from_a_store_decode_like_the_file(md_test: Path, server: FileServer) -> None:
    photo = sorted((md_test / "images").iterdir())[0]
    server.files[f"/imgs/{photo.name}"] = photo.read_bytes()
    store = open_store(f"{server.url}/imgs")
    data = read_image(store, photo.name)
    im, header = open_image(Path(photo.name), data=data)
    with im:
        assert header == open_image(photo)[1]
    with Image.open(io.BytesIO(data)) as direct:
        assert load_image(photo).tobytes() == direct.convert("RGB").tobytes()


def test_store_failures_are_image_load_errors(server: FileServer) -> None:
    server.files["/imgs/broken.jpg"] = b"\xff\xd8 not a jpeg"
    server.files["/imgs/refused.jpg"] = b"x"
    server.always["/imgs/refused.jpg"] = 503
    store = open_store(f"{server.url}/imgs")
    with pytest.raises(ImageLoadError) as missing:
        read_image(store, "gone.jpg")
    assert missing.value.kind is FailureKind.NONEXISTENT
    with pytest.raises(ImageLoadError) as refused:
        read_image(store, "refused.jpg")
    assert refused.value.kind is FailureKind.BAD and "503" in refused.value.reason
    with pytest.raises(ImageLoadError) as bad:
        open_image(Path("broken.jpg"), data=read_image(store, "broken.jpg"))
    assert bad.value.kind is FailureKind.BAD
    with pytest.raises(ImageLoadError) as empty:
        open_image(Path("empty.jpg"), data=b"")
    assert empty.value.reason == "empty file (0 bytes)"
    with pytest.raises(ImageLoadError) as name:
        read_image(store, "notes.txt")
    assert name.value.kind is FailureKind.NON_IMAGE
