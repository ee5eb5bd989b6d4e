from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ct_crop.geometry import (
    PixelRect,
    Strategy,
    UnusableBox,
    box_pixels,
    crop_region,
    decode_scale,
    normalized_to_pixels,
    output_size,
    placed_source,
)
from ct_crop.render import crop_box, render_crop

IMAGE = (200, 100)


def test_box_becomes_smallest_containing_pixel_rect() -> None:
    assert box_pixels((10.2, 5.7, 20.1, 10.0), IMAGE) == PixelRect(10, 5, 31, 16)
    # float noise on an exact edge does not add a pixel
    assert box_pixels((0.25 * 2000, 0, 0.1 * 2000, 10), (2000, 10)) == PixelRect(500, 0, 700, 10)


def test_margin_grows_each_side_by_a_fraction_of_the_box() -> None:
    assert box_pixels((50, 40, 20, 10), IMAGE, margin=0.5) == PixelRect(40, 35, 80, 55)


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ((10, 10, 0, 5), "zero or negative"),
        ((10, 10, -3, 5), "zero or negative"),
        ((250, 10, 10, 10), "outside"),
        ((-30, -30, 10, 10), "outside"),
        ((float("nan"), 0, 1, 1), "non-finite"),
    ],
)
def test_unusable_boxes_say_why(box: tuple[float, ...], message: str) -> None:
    with pytest.raises(UnusableBox, match=message):
        crop_region(box, IMAGE)


def test_box_crossing_the_edge_is_clipped() -> None:
    assert box_pixels((190, 90, 30, 30), IMAGE) == PixelRect(190, 90, 200, 100)
    assert box_pixels((-5, -5, 10, 10), IMAGE) == PixelRect(0, 0, 5, 5)


def test_tiny_boxes_cover_one_pixel_huge_ones_the_image() -> None:
    assert box_pixels((5.5, 7.2, 1e-9, 1e-9), IMAGE) == PixelRect(5, 7, 6, 8)
    assert box_pixels((-1e6, -1e6, 3e6, 3e6), IMAGE) == PixelRect(0, 0, 200, 100)


def test_min_size_applies_after_clipping() -> None:
    with pytest.raises(UnusableBox, match="smaller than the minimum size 8"):
        crop_region((196, 10, 30, 30), IMAGE, min_size=8)
    assert crop_region((190, 10, 30, 30), IMAGE, Strategy.TIGHT, min_size=8).box.width == 10


def test_square_shifts_inside_the_image_using_the_square_side() -> None:
    # Near the right edge: MegaDetector clamps with the box width and reads past the edge
    # (black fill); the square must instead move left by the square's side.
    region = crop_region((180, 40, 20, 10), IMAGE, Strategy.SQUARE)
    assert region.source == PixelRect(180, 35, 200, 55)
    assert not region.needs_fill
    region = crop_region((185, 0, 15, 60), IMAGE, Strategy.SQUARE)
    assert region.source == PixelRect(140, 0, 200, 60)
    assert not region.needs_fill


def test_square_longer_than_the_image_uses_all_of_it_and_fills_the_rest() -> None:
    region = crop_region((0, 10, 200, 80), IMAGE, Strategy.SQUARE)
    assert region.canvas == (200, 200)
    assert region.source == PixelRect(0, 0, 200, 100)
    assert region.offset == (0, 50)


def test_pad_centres_the_box_on_a_square() -> None:
    region = crop_region((10, 20, 40, 10), IMAGE, Strategy.PAD)
    assert region.source == PixelRect(10, 20, 50, 30)
    assert region.canvas == (40, 40)
    assert region.offset == (0, 15)


def test_center_keeps_the_box_centred_and_fills_outside() -> None:
    region = crop_region((0, 0, 10, 40), IMAGE, Strategy.CENTER)
    assert region.canvas == (40, 40)
    assert region.source == PixelRect(0, 0, 25, 40)
    assert region.offset == (15, 0)


def test_tight_is_the_box() -> None:
    region = crop_region((3, 4, 5, 6), IMAGE, Strategy.TIGHT)
    assert region.source == region.box == PixelRect(3, 4, 8, 10)
    assert region.canvas == (5, 6)


def test_output_size_and_decode_scale() -> None:
    assert output_size((300, 150), 448) == (448, 224)
    assert output_size((100, 50), 448, upscale=False) == (100, 50)
    assert output_size((100, 50), None) == (100, 50)
    assert decode_scale([4000, 2000], 448) == 4
    assert decode_scale([4000, 300], 448) == 1
    assert decode_scale([4000], None) == 1
    assert decode_scale([10000], 448) == 8


boxes = st.tuples(
    st.floats(-300, 500), st.floats(-300, 500), st.floats(-10, 600), st.floats(-10, 600)
)
sizes = st.tuples(st.integers(1, 400), st.integers(1, 400))


@settings(max_examples=400, deadline=None)
@given(box=boxes, size=sizes, strategy=st.sampled_from(list(Strategy)), margin=st.floats(0, 1))
def test_region_invariants(box: tuple[float, float, float, float], size: tuple[int, int], strategy: Strategy, margin: float) -> None:
    try:
        region = crop_region(box, size, strategy, margin=margin)
    except UnusableBox:
        x, y, w, h = box
        if w <= 0 or h <= 0:
            return
        lo_x = math.floor(x - margin * w + 1e-6)
        lo_y = math.floor(y - margin * h + 1e-6)
        hi_x = max(lo_x + 1, math.ceil(x + w + margin * w - 1e-6))
        hi_y = max(lo_y + 1, math.ceil(y + h + margin * h - 1e-6))
        assert lo_x >= size[0] or lo_y >= size[1] or hi_x <= 0 or hi_y <= 0
        return
    W, H = size
    src, b = region.source, region.box
    # source inside the image, box inside the source, everything non-empty
    assert 0 <= src.left < src.right <= W and 0 <= src.top < src.bottom <= H
    assert src.left <= b.left < b.right <= src.right and src.top <= b.top < b.bottom <= src.bottom
    # the source fits on the canvas where it is placed
    ox, oy = region.offset
    assert ox >= 0 and oy >= 0 and ox + src.width <= region.canvas[0] and oy + src.height <= region.canvas[1]
    if strategy is Strategy.TIGHT:
        assert not region.needs_fill and src == b
    else:
        assert region.canvas[0] == region.canvas[1] == max(b.width, b.height)
    if strategy is Strategy.SQUARE and max(b.width, b.height) <= min(W, H):
        assert not region.needs_fill  # never black fill when the square fits in the image


@settings(max_examples=150, deadline=None)
@given(box=boxes, size=st.tuples(st.integers(1, 60), st.integers(1, 60)), strategy=st.sampled_from(list(Strategy)))
def test_rendered_pixels_are_the_image_pixels(box: tuple[float, float, float, float], size: tuple[int, int], strategy: Strategy) -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(arr)
    try:
        region = crop_region(box, size, strategy)
    except UnusableBox:
        return
    out = np.asarray(render_crop(image, region, fill=(7, 8, 9)))
    assert out.shape == (region.canvas[1], region.canvas[0], 3)
    s, (ox, oy) = region.source, region.offset
    expected = np.empty_like(out)
    expected[:] = (7, 8, 9)
    expected[oy : oy + s.height, ox : ox + s.width] = arr[s.top : s.bottom, s.left : s.right]
    assert np.array_equal(out, expected)


def test_resized_crop_places_source_where_the_canvas_says() -> None:
    arr = np.full((100, 200, 3), 200, np.uint8)
    region = crop_region((10, 20, 80, 40), (200, 100), Strategy.PAD)
    out = render_crop(Image.fromarray(arr), region, size=448)
    assert out.size == (448, 448)
    dest = placed_source(region, (448, 448))
    a = np.asarray(out)
    assert (dest.left, dest.top, dest.right, dest.bottom) == (0, 112, 448, 336)
    assert (a[: dest.top] == 0).all() and (a[dest.bottom :] == 0).all()
    assert (a[dest.top : dest.bottom] == 200).all()


def test_crop_box_takes_normalized_boxes() -> None:
    arr = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3).astype(np.uint8)
    out = crop_box(Image.fromarray(arr), [0.1, 0.2, 0.25, 0.5], "tight")
    assert normalized_to_pixels([0.1, 0.2, 0.25, 0.5], (200, 100)) == (20.0, 20.0, 50.0, 50.0)
    assert np.array_equal(np.asarray(out), arr[20:70, 20:70])
