from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def gradient(width: int, height: int) -> np.ndarray:
    """A deterministic RGB image where every pixel is distinguishable."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x * 7) % 256, (y * 5) % 256, (x + y) % 256], axis=-1).astype(np.uint8)


@pytest.fixture(scope="session")
def make_gradient():  # type: ignore[no-untyped-def]
    return gradient


def jpeg_with_orientation(arr: np.ndarray, orientation: int) -> bytes:
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


@pytest.fixture()
def edge_images(tmp_path: Path) -> Path:
    """A folder of awkward images: every one must crop or fail with a reason."""
    d = tmp_path / "edge"
    d.mkdir()
    rgb = gradient(64, 48)
    Image.fromarray(rgb).save(d / "ok.jpg", quality=95)
    Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg", quality=95)
    Image.fromarray(rgb).convert("L").save(d / "gray.jpg", quality=95)
    Image.fromarray(np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 21).save(d / "deep16.png")
    rgba = np.dstack([rgb, np.full((48, 64), 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(d / "alpha.png")
    Image.fromarray(rgb).save(d / "png_named.jpg", format="PNG")
    data = (d / "ok.jpg").read_bytes()
    big = io.BytesIO()
    Image.fromarray(gradient(640, 480)).save(big, "JPEG", quality=95)
    (d / "truncated.jpg").write_bytes(big.getvalue()[: len(big.getvalue()) * 2 // 3])
    (d / "zero.jpg").write_bytes(b"")
    (d / "garbage.jpg").write_bytes(b"this is not an image at all" * 10)
    (d / "notes.txt").write_bytes(data)
    (d / "rot6.jpg").write_bytes(jpeg_with_orientation(rgb, 6))
    (d / "mirror2.jpg").write_bytes(jpeg_with_orientation(rgb, 2))
    return d
