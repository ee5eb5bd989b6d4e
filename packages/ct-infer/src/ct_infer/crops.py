"""Crop names and in-memory crops of detector boxes.

Crop file names follow the shared convention (``a/b.jpg___crop00_<detector>.jpg`` for
detector box 0 of ``a/b.jpg``; no suffix for a ground-truth box), so a crop maps back to
exactly one box. The geometry here (tightest square around a box, clipped to the image)
is the same rule ct-crop uses to write crop files; it is kept in this one small module so
``ct-infer run`` can crop in memory without ct-crop's writer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from attrs import frozen
from PIL import Image

_CROP_RE = re.compile(r"^(?P<file>.+)___crop(?P<k>\d+)(?:_(?P<version>[^/]*?))?\.(?:jpg|jpeg|png)$", re.IGNORECASE)


@frozen
class CropRef:
    """Which box of which image a crop is."""

    file: str
    index: int
    version: str | None = None


def crop_name(file: str, index: int, version: str | None = None) -> str:
    """``a/b.jpg`` box 3 of detector ``v5a.0.0`` → ``a/b.jpg___crop03_v5a.0.0.jpg``."""
    suffix = f"_{version}" if version else ""
    return f"{file}___crop{index:02d}{suffix}.jpg"


def parse_crop_name(name: str) -> CropRef | None:
    """The box a crop path names, or None when it does not follow the convention."""
    m = _CROP_RE.match(name.replace("\\", "/"))
    if not m:
        return None
    return CropRef(m["file"], int(m["k"]), m["version"] or None)


def box_pixels(bbox: Sequence[float], width: int, height: int, *, square: bool = True, padding: float = 0.0) -> tuple[int, int, int, int] | None:
    """Pixel box ``(left, top, right, bottom)`` of a normalized ``[x, y, w, h]`` box.

    ``square`` takes the tightest square around the box (centred on it, shifted to stay
    inside the image where it fits); ``padding`` adds that many pixels on every side.
    Boxes partly outside the image are clipped; an empty result is None.
    """
    x, y, w, h = (float(v) for v in bbox)
    left, top = x * width - padding, y * height - padding
    bw, bh = w * width + 2 * padding, h * height + 2 * padding
    if square:
        side = max(bw, bh)
        cx, cy = left + bw / 2, top + bh / 2
        side = min(side, max(width, height))
        left, top = cx - side / 2, cy - side / 2
        left = min(max(left, 0.0), max(width - side, 0.0)) if side <= width else left
        top = min(max(top, 0.0), max(height - side, 0.0)) if side <= height else top
        bw = bh = side
    l_px, t_px = max(0, round(left)), max(0, round(top))
    r_px, b_px = min(width, round(left + bw)), min(height, round(top + bh))
    if r_px - l_px < 1 or b_px - t_px < 1:
        return None
    return l_px, t_px, r_px, b_px


def crop_box(image: Image.Image, bbox: Sequence[float], *, square: bool = True, padding: float = 0.0) -> Image.Image | None:
    """The crop of ``image`` for a normalized box (None when the box is empty)."""
    px = box_pixels(bbox, image.width, image.height, square=square, padding=padding)
    return image.crop(px) if px else None
