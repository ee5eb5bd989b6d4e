"""Loading real camera-trap images: EXIF orientation, odd modes, broken files.

Every image becomes 8-bit RGB in the orientation the detector saw, or an
:class:`ImageFailure` with a kind and a reason — never an unexplained exception.

EXIF orientation (``ExifMode``): boxes are only meaningful in the frame the detector
(or the annotator) saw. MegaDetector's loader (``visualization_utils.open_image``)
rotates JPEGs whose EXIF orientation is 3, 6 or 8 and ignores the mirrored orientations
2, 4, 5 and 7 (and EXIF in non-JPEG files). The default, ``megadetector``, does exactly
the same, so MD boxes land on the pixels MD looked at. ``full`` applies all eight
orientations (what image viewers show; use it for boxes drawn in a viewer), ``none``
uses the pixels as stored. MegaDetector's own ``crop_detections`` ignores EXIF entirely,
which misplaces every box on a rotated photo; that is a bug we do not copy.

Failure kinds are those of the seed's ``analyze_failed_images``: ``nonexistent``,
``non_image`` (the name does not end with an image extension), ``truncated`` (opens
only when truncated files are allowed) and ``bad`` (exists but cannot be decoded: empty
file, unknown content, corrupt data).
"""

from __future__ import annotations

import enum
import math
import os
from pathlib import Path

from attrs import frozen
from PIL import Image, ImageFile

#: File name endings treated as images (case-insensitive).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"})
_ORIENTATION_TAG = 0x0112


class ExifMode(enum.StrEnum):
    """Which EXIF orientations to apply (see the module docstring)."""

    MEGADETECTOR = "megadetector"
    FULL = "full"
    NONE = "none"


class FailureKind(enum.StrEnum):
    """Why an image could not be used (the classes of ``ct-crop analyze-failures``)."""

    NONEXISTENT = "nonexistent"
    NON_IMAGE = "non_image"
    TRUNCATED = "truncated"
    BAD = "bad"


class ImageFailure(Exception):
    """An image that cannot be used; ``kind`` classifies it, the message explains it."""

    def __init__(self, kind: FailureKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


_MD_TRANSPOSE = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90}
_FULL_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = {Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270, Image.Transpose.TRANSPOSE, Image.Transpose.TRANSVERSE}


@frozen
class ImageHeader:
    """What the file's header says: format, oriented full-resolution size, transpose."""

    format: str
    size: tuple[int, int]
    transpose: Image.Transpose | None


def is_image_name(name: str) -> bool:
    """True when ``name`` ends with an image extension."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def open_image(path: Path, exif: ExifMode = ExifMode.MEGADETECTOR) -> tuple[Image.Image, ImageHeader]:
    """Open ``path`` lazily (header only) and say how it will be oriented.

    Raises ``ImageFailure`` for a missing, empty or unrecognised file.
    """
    if not is_image_name(path.name):
        raise ImageFailure(FailureKind.NON_IMAGE, f"not an image file name ({path.suffix or 'no extension'})")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageFailure(FailureKind.NONEXISTENT, "file not found") from None
    except OSError as exc:
        raise ImageFailure(FailureKind.BAD, f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise ImageFailure(FailureKind.BAD, "empty file (0 bytes)")
    try:
        im = Image.open(path)
    except Image.UnidentifiedImageError:
        raise ImageFailure(FailureKind.BAD, "content is not an image format Pillow knows") from None
    except Image.DecompressionBombError as exc:
        raise ImageFailure(FailureKind.BAD, f"too many pixels: {exc}") from None
    except Exception as exc:  # corrupt headers raise all sorts (SyntaxError, struct.error...)
        raise ImageFailure(FailureKind.BAD, f"unreadable header: {_describe(exc)}") from None
    transpose = _transpose(im, exif)
    w, h = im.size
    oriented = (h, w) if transpose in _SWAPS_AXES else (w, h)
    return im, ImageHeader(im.format or "?", oriented, transpose)


def _transpose(im: Image.Image, exif: ExifMode) -> Image.Transpose | None:
    if exif is ExifMode.NONE:
        return None
    try:
        if exif is ExifMode.MEGADETECTOR:
            if not hasattr(im, "_getexif"):  # MD reads EXIF through JPEG's _getexif only
                return None
            return _MD_TRANSPOSE.get(int(im.getexif().get(_ORIENTATION_TAG, 1)))
        return _FULL_TRANSPOSE.get(int(im.getexif().get(_ORIENTATION_TAG, 1)))
    except Exception:  # malformed EXIF: MegaDetector ignores it, so do we
        return None


def decode_image(
    im: Image.Image, header: ImageHeader, *, reduce: int = 1, allow_truncated: bool = False, path: Path | None = None
) -> Image.Image:
    """Decode a lazily opened image to oriented 8-bit RGB, ``reduce`` times smaller (JPEG only).

    A truncated file raises ``ImageFailure(TRUNCATED)`` unless ``allow_truncated``;
    ``path`` lets a truncated file be reopened to tell truncated from bad.
    """
    if reduce > 1 and im.format == "JPEG":
        w, h = im.size
        im.draft("RGB", (math.ceil(w / reduce), math.ceil(h / reduce)))
    try:
        im.load()
    except Image.DecompressionBombError as exc:
        raise ImageFailure(FailureKind.BAD, f"too many pixels: {exc}") from None
    except Exception as exc:
        im = _load_truncated(path, exc, allow_truncated, reduce)
    if header.transpose is not None:
        im = im.transpose(header.transpose)
    return to_rgb(im)


def _load_truncated(path: Path | None, first: Exception, allow: bool, reduce: int) -> Image.Image:
    if path is None:
        raise ImageFailure(FailureKind.BAD, f"cannot decode: {_describe(first)}")
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        im = Image.open(path)
        if reduce > 1 and im.format == "JPEG":
            im.draft("RGB", (math.ceil(im.size[0] / reduce), math.ceil(im.size[1] / reduce)))
        im.load()
    except Exception as exc:
        raise ImageFailure(FailureKind.BAD, f"cannot decode: {_describe(first)} (also with truncated loading: {_describe(exc)})") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
    if not allow:
        raise ImageFailure(FailureKind.TRUNCATED, f"truncated or corrupt data ({_describe(first)}); --load-truncated crops what is there")
    return im


def load_image(
    path: Path, *, exif: ExifMode = ExifMode.MEGADETECTOR, allow_truncated: bool = False, reduce: int = 1
) -> Image.Image:
    """Open and decode ``path`` to oriented 8-bit RGB (see ``open_image``/``decode_image``)."""
    im, header = open_image(path, exif)
    with im:
        return decode_image(im, header, reduce=reduce, allow_truncated=allow_truncated, path=path)


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB from any mode: 16-bit and 32-bit greys are scaled, not clipped."""
    if im.mode == "RGB":
        return im
    import numpy as np

    if im.mode.startswith("I;16") or im.mode == "I":
        arr = np.asarray(im, dtype=np.int64)
        arr = (np.clip(arr, 0, 65535) + 128) // 257
        return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L").convert("RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        return im.convert("RGBA").convert("RGB")
    return im.convert("RGB")


def check_image(path: Path) -> tuple[str, str]:
    """Classify one file as ``good`` or a failure kind, with a reason (for analyze-failures)."""
    try:
        im, header = open_image(path, ExifMode.NONE)
        with im:
            decode_image(im, header, path=path)
    except ImageFailure as exc:
        return exc.kind.value, exc.reason
    return "good", ""


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
