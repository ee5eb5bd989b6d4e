"""Turn a :class:`~ct_crop.geometry.CropRegion` into pixels with PIL.

``crop_box`` is the one-call API other packages use (``ct-infer run`` crops in memory
with it); ``render_crop`` is the piece the batch cropper calls with a region it already
planned, possibly on an image decoded at reduced size.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from ct_crop.geometry import CropRegion, Strategy, crop_region, normalized_to_pixels, output_size, placed_source

Fill = tuple[int, int, int]
#: High-quality resampling used whenever a crop is resized.
RESAMPLE = Image.Resampling.LANCZOS


def render_crop(
    image: Image.Image,
    region: CropRegion,
    *,
    size: int | None = None,
    upscale: bool = True,
    fill: Fill = (0, 0, 0),
    scale: tuple[float, float] = (1.0, 1.0),
) -> Image.Image:
    """The crop ``region`` describes, from ``image`` (RGB), resized when ``size`` is given.

    ``region`` is in full-resolution pixels; ``scale`` is the decoded image's size
    divided by the full-resolution size (below 1 after a reduced JPEG decode). Without
    resizing and at scale 1 the result is the image's own pixels, exactly.
    """
    out = output_size(region.canvas, size, upscale=upscale)
    src = region.source
    sx, sy = scale
    exact = scale == (1.0, 1.0) and out == region.canvas
    if exact:
        patch = image.crop(src.as_tuple)
        if not region.needs_fill:
            return patch
        canvas = Image.new(image.mode, region.canvas, fill)
        canvas.paste(patch, region.offset)
        return canvas
    dest = placed_source(region, out)
    box = (src.left * sx, src.top * sy, src.right * sx, src.bottom * sy)
    patch = image.resize((dest.width, dest.height), RESAMPLE, box=box)
    if (dest.width, dest.height) == out:
        return patch
    canvas = Image.new(image.mode, out, fill)
    canvas.paste(patch, (dest.left, dest.top))
    return canvas


def crop_box(
    image: Image.Image,
    box_norm: Sequence[float],
    strategy: Strategy | str = Strategy.SQUARE,
    *,
    margin: float = 0.0,
    min_size: int = 0,
    size: int | None = None,
    upscale: bool = True,
    fill: Fill = (0, 0, 0),
) -> Image.Image:
    """Crop a normalized MegaDetector box ``[x, y, w, h]`` out of a loaded image.

    Raises ``ct_crop.geometry.UnusableBox`` when the box gives no crop (outside the
    image, zero size, below ``min_size``).
    """
    region = crop_region(normalized_to_pixels(box_norm, image.size), image.size, strategy, margin=margin, min_size=min_size)
    return render_crop(image, region, size=size, upscale=upscale, fill=fill)
