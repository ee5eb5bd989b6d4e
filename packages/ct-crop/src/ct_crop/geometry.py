"""Crop geometry: from a box to the exact pixels of its crop. Pure: no image library.

A box arrives as floats (``x, y, w, h`` in pixels; see :func:`normalized_to_pixels`) and
leaves as a :class:`CropRegion`: which pixels to read from the image (``source``, always
inside the image), the size of the crop before any resizing (``canvas``) and where the
source lands on it (``offset``). Any canvas area the source does not cover is filled
with the fill colour; only ``pad`` and ``center`` (and ``square`` when the square is
larger than the image) ever leave such area.

Rounding rule, the same everywhere: a float box becomes the smallest whole-pixel
rectangle that contains it (``floor`` of the left/top edge, ``ceil`` of the right/bottom
edge, with a 1e-6 px tolerance so ``0.25 * 2000`` stays 500), then it is clipped to the
image. Every other step is integer arithmetic, so a crop is identical to the pixel
wherever it is computed.

Strategies (``Strategy``):

- ``tight``: the box as it is.
- ``square``: the tightest square around the box (side = its longer side), shifted to
  stay inside the image; pixels of the image fill the whole square, never a fill colour,
  unless the square is longer than the image's side (then the image's full extent is
  used on that axis and the rest is filled, centred).
- ``pad``: the box as it is, centred on a square canvas of the fill colour (keeps the
  aspect ratio and sees no extra background).
- ``center``: the square of ``square`` centred on the box and never shifted; what lies
  outside the image is filled (the animal stays centred, as in MegaDetector's intent for
  its ``--square-crops``, without that tool's bug of reading past the edge).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence

from attrs import frozen

#: Tolerance in pixels when turning float edges into whole pixels.
EDGE_EPS = 1e-6


class Strategy(enum.StrEnum):
    """How a box becomes a crop (see the module docstring)."""

    TIGHT = "tight"
    SQUARE = "square"
    PAD = "pad"
    CENTER = "center"


class UnusableBox(ValueError):
    """A box that yields no crop; the message says why (logged, never fatal)."""


@frozen
class PixelRect:
    """A half-open rectangle of whole pixels: columns ``left..right-1``, rows ``top..bottom-1``."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def as_tuple(self) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)``, as PIL's ``Image.crop`` takes it."""
        return (self.left, self.top, self.right, self.bottom)

    @property
    def xywh(self) -> tuple[int, int, int, int]:
        """``(x, y, width, height)``, the COCO convention."""
        return (self.left, self.top, self.width, self.height)


@frozen
class CropRegion:
    """Where a crop's pixels come from and where they go.

    ``box``: the box (margin included) in whole pixels, clipped to the image.
    ``source``: the pixels read from the image (always inside it, contains ``box``).
    ``canvas``: ``(width, height)`` of the crop before any resizing.
    ``offset``: where ``source``'s top-left corner lands on the canvas.
    """

    box: PixelRect
    source: PixelRect
    canvas: tuple[int, int]
    offset: tuple[int, int]

    @property
    def needs_fill(self) -> bool:
        """True when part of the canvas is not covered by image pixels."""
        return self.canvas != (self.source.width, self.source.height)


def normalized_to_pixels(bbox: Sequence[float], image_size: tuple[int, int]) -> tuple[float, float, float, float]:
    """MegaDetector's normalized ``[x, y, w, h]`` → float pixels for an image ``(width, height)``."""
    x, y, w, h = (float(v) for v in bbox)
    width, height = image_size
    return (x * width, y * height, w * width, h * height)


def box_pixels(
    box: Sequence[float], image_size: tuple[int, int], *, margin: float = 0.0
) -> PixelRect:
    """The whole-pixel rectangle of a float ``(x, y, w, h)`` box, grown by ``margin``, clipped.

    ``margin`` is a fraction of the box's own size added on every side (0.1 = 10 % of
    the width left and right, 10 % of the height above and below).

    Raises ``UnusableBox`` for non-finite values, a zero or negative size, or a box that
    lies entirely outside the image.
    """
    if len(box) != 4:
        raise UnusableBox(f"expected 4 numbers [x, y, w, h], got {len(box)}")
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise UnusableBox(f"non-finite box {[x, y, w, h]}")
    if w <= 0 or h <= 0:
        raise UnusableBox(f"zero or negative size (w={w:g}, h={h:g} px)")
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, got {margin}")
    width, height = image_size
    if width <= 0 or height <= 0:
        raise UnusableBox(f"image has no pixels ({width}x{height})")
    x0, x1 = x - margin * w, x + w + margin * w
    y0, y1 = y - margin * h, y + h + margin * h
    left, right = _whole_pixels(x0, x1)
    top, bottom = _whole_pixels(y0, y1)
    left, top, right, bottom = max(0, left), max(0, top), min(width, right), min(height, bottom)
    if right <= left or bottom <= top:
        raise UnusableBox(f"box {[round(v, 2) for v in (x, y, w, h)]} px lies outside the {width}x{height} image")
    return PixelRect(left, top, right, bottom)


def _whole_pixels(start: float, end: float) -> tuple[int, int]:
    """The pixels ``[lo, hi)`` covering ``[start, end)``; a box of positive size covers at least one."""
    lo = math.floor(start + EDGE_EPS)
    return lo, max(lo + 1, math.ceil(end - EDGE_EPS))


def crop_region(
    box: Sequence[float],
    image_size: tuple[int, int],
    strategy: Strategy | str = Strategy.SQUARE,
    *,
    margin: float = 0.0,
    min_size: int = 0,
) -> CropRegion:
    """The crop of a float pixel box ``(x, y, w, h)`` in an image of ``(width, height)``.

    ``min_size``: a box (after margin and clipping) narrower or shorter than this many
    pixels raises ``UnusableBox``.
    """
    strategy = Strategy(strategy)
    rect = box_pixels(box, image_size, margin=margin)
    if rect.width < min_size or rect.height < min_size:
        raise UnusableBox(f"box {rect.width}x{rect.height} px is smaller than the minimum size {min_size} px")
    width, height = image_size
    if strategy is Strategy.TIGHT:
        return CropRegion(rect, rect, (rect.width, rect.height), (0, 0))
    side = max(rect.width, rect.height)
    if strategy is Strategy.PAD:
        offset = ((side - rect.width) // 2, (side - rect.height) // 2)
        return CropRegion(rect, rect, (side, side), offset)
    if strategy is Strategy.SQUARE:
        sx0, sx1, ox = _shift_inside(rect.left, rect.width, side, width)
        sy0, sy1, oy = _shift_inside(rect.top, rect.height, side, height)
        return CropRegion(rect, PixelRect(sx0, sy0, sx1, sy1), (side, side), (ox, oy))
    # CENTER: the square centred on the box, whatever the image edges
    sq_left = rect.left - (side - rect.width) // 2
    sq_top = rect.top - (side - rect.height) // 2
    source = PixelRect(max(0, sq_left), max(0, sq_top), min(width, sq_left + side), min(height, sq_top + side))
    return CropRegion(rect, source, (side, side), (source.left - sq_left, source.top - sq_top))


def _shift_inside(start: int, length: int, side: int, limit: int) -> tuple[int, int, int]:
    """One axis of a ``square`` crop: (source start, source end, offset on the canvas)."""
    if side > limit:  # the square is longer than the image: take all of it, centre it
        return 0, limit, (side - limit) // 2
    lo = start - (side - length) // 2
    lo = min(max(lo, 0), limit - side)
    return lo, lo + side, 0


def output_size(canvas: tuple[int, int], size: int | None, *, upscale: bool = True) -> tuple[int, int]:
    """Final crop size: the canvas scaled so its longest side is ``size`` (None: unchanged).

    With ``upscale=False`` a canvas already smaller than ``size`` keeps its size.
    """
    cw, ch = canvas
    if size is None:
        return canvas
    if size <= 0:
        raise ValueError(f"output size must be positive, got {size}")
    longest = max(cw, ch)
    if longest == size or (not upscale and longest < size):
        return canvas
    scale = size / longest
    return (max(1, round(cw * scale)), max(1, round(ch * scale)))


def placed_source(region: CropRegion, out: tuple[int, int]) -> PixelRect:
    """Where the source pixels land on an output of size ``out`` (the canvas scaled)."""
    cw, ch = region.canvas
    sx, sy = out[0] / cw, out[1] / ch
    ox, oy = region.offset
    left, top = round(ox * sx), round(oy * sy)
    right = max(left + 1, min(out[0], round((ox + region.source.width) * sx)))
    bottom = max(top + 1, min(out[1], round((oy + region.source.height) * sy)))
    return PixelRect(left, top, right, bottom)


def decode_scale(sides: Sequence[int], size: int | None, *, max_reduction: int = 8) -> int:
    """The largest JPEG decode reduction (1, 2, 4 or 8) that keeps every crop at least ``size``.

    ``sides``: the longest canvas side of each crop to make from one image, in
    full-resolution pixels. Reduced decoding (PIL ``draft``) is only used when every
    crop still has at least ``size`` pixels on its longest side after the reduction, so
    it never costs detail in the output.
    """
    if size is None or not sides:
        return 1
    smallest = min(sides)
    scale = 1
    while scale * 2 <= max_reduction and smallest / (scale * 2) >= size:
        scale *= 2
    return scale
