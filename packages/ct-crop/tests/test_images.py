from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ct_crop.images import ExifMode, FailureKind, ImageFailure, check_image, load_image, open_image, to_rgb


@pytest.mark.parametrize("name", ["ok.jpg", "cmyk.jpg", "gray.jpg", "deep16.png", "alpha.png", "png_named.jpg"])
def test_odd_but_valid_images_load_as_rgb(edge_images: Path, name: str) -> None:
    im = load_image(edge_images / name)
    assert im.mode == "RGB" and im.size == (64, 48)


def test_16_bit_greys_are_scaled_not_clipped(edge_images: Path) -> None:
    raw = np.asarray(Image.open(edge_images / "deep16.png"), dtype=np.int64)
    rgb = np.asarray(load_image(edge_images / "deep16.png"))
    assert raw.max() > 255
    assert np.array_equal(rgb[..., 0], ((raw + 128) // 257).astype(np.uint8))
    assert rgb[..., 0].max() == (raw.max() + 128) // 257 < 255 or raw.max() >= 65400


def test_cmyk_colours_survive(edge_images: Path) -> None:
    ok = np.asarray(load_image(edge_images / "ok.jpg"), dtype=int)
    cmyk = np.asarray(load_image(edge_images / "cmyk.jpg"), dtype=int)
    assert np.abs(ok - cmyk).mean() < 8


@pytest.mark.parametrize(
    ("name", "kind", "reason"),
    [
        ("missing.jpg", FailureKind.NONEXISTENT, "not found"),
        ("zero.jpg", FailureKind.BAD, "empty file"),
        ("garbage.jpg", FailureKind.BAD, "not an image format"),
        ("notes.txt", FailureKind.NON_IMAGE, "not an image file name"),
        ("truncated.jpg", FailureKind.TRUNCATED, "--load-truncated"),
    ],
)
def test_broken_files_fail_with_a_kind_and_reason(edge_images: Path, name: str, kind: FailureKind, reason: str) -> None:
    with pytest.raises(ImageFailure, match=reason) as info:
        load_image(edge_images / name)
    assert info.value.kind is kind
    assert check_image(edge_images / name) == (kind.value, info.value.reason)


def test_truncated_loads_when_allowed(edge_images: Path) -> None:
    im = load_image(edge_images / "truncated.jpg", allow_truncated=True)
    assert im.size == (640, 480)
    assert check_image(edge_images / "ok.jpg") == ("good", "")


def test_exif_rotation_as_megadetector_sees_it(edge_images: Path, make_gradient) -> None:  # type: ignore[no-untyped-def]
    arr = make_gradient(64, 48)
    rotated = load_image(edge_images / "rot6.jpg")
    assert rotated.size == (48, 64)  # orientation 6: rotate 90° clockwise
    expected = np.rot90(arr, k=-1)
    assert np.abs(np.asarray(rotated, dtype=int) - expected).mean() < 4
    _, header = open_image(edge_images / "rot6.jpg")
    assert header.size == (48, 64)
    # MegaDetector ignores mirrored orientations; "full" applies them; "none" ignores all
    mirrored = np.asarray(load_image(edge_images / "mirror2.jpg"), dtype=int)
    assert np.abs(mirrored - arr).mean() < 4
    flipped = np.asarray(load_image(edge_images / "mirror2.jpg", exif=ExifMode.FULL), dtype=int)
    assert np.abs(flipped - arr[:, ::-1]).mean() < 4
    assert load_image(edge_images / "rot6.jpg", exif=ExifMode.NONE).size == (64, 48)


def test_reduced_decoding_halves_the_size(md_test: Path) -> None:
    path = next((md_test / "images").glob("snapshot_kruger_*"))
    full = load_image(path)
    half = load_image(path, reduce=2)
    assert half.size == ((full.width + 1) // 2, (full.height + 1) // 2)


def test_to_rgb_handles_palette_with_transparency() -> None:
    im = Image.new("P", (4, 4))
    im.info["transparency"] = 0
    assert to_rgb(im).mode == "RGB"
