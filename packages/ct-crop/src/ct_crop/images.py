"""Loading real camera-trap images: EXIF orientation, odd modes, broken files.

Every image becomes 8-bit RGB in the orientation the detector saw, or an
:class:`ImageLoadError` with a kind and a reason — never an unexplained exception.

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
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

from attrs import frozen
from PIL import Image, ImageFile, JpegImagePlugin

from ct_crop.settings import ExifMode

if TYPE_CHECKING:
    from ct_io.storage import ImageStore

#: File name endings treated as images (case-insensitive).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"})
_ORIENTATION_TAG = 0x0112


class FailureKind(enum.StrEnum):
    """Why an image could not be used (the classes of ``ct-crop analyze-failures``)."""

    NONEXISTENT = "nonexistent"
    NON_IMAGE = "non_image"
    TRUNCATED = "truncated"
    BAD = "bad"


class ImageLoadError(Exception):
    """An image that cannot be used; ``kind`` classifies it, the message explains it."""

    def __init__(self, kind: FailureKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


_MD_TRANSPOSE = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_270,
    8: Image.Transpose.ROTATE_90,
}
_FULL_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = {
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
}


@frozen
class ImageHeader:
    """What the file's header says: format, oriented full-resolution size, transpose."""

    format: str
    size: tuple[int, int]
    transpose: Image.Transpose | None


def is_image_name(name: str) -> bool:
    """True when ``name`` ends with an image extension."""
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def open_image(
    path: Path, exif: ExifMode = ExifMode.MEGADETECTOR, *, data: bytes | None = None
) -> tuple[Image.Image, ImageHeader]:
    """Open ``path`` lazily (header only) and say how it will be oriented.

    ``data``: the file's bytes, read already (from an object store, :func:`read_image`);
    ``path`` then only names it. Raises ``ImageLoadError`` for a missing, empty or
    unrecognised file.
    """
    if not is_image_name(path.name):
        raise ImageLoadError(
            FailureKind.NON_IMAGE, f"not an image file name ({path.suffix or 'no extension'})"
        )
    try:
        im = Image.open(path if data is None else io.BytesIO(data))
    except FileNotFoundError:
        raise ImageLoadError(FailureKind.NONEXISTENT, "file not found") from None
    except IsADirectoryError:
        raise ImageLoadError(FailureKind.BAD, "is a folder, not a file") from None
    except Image.UnidentifiedImageError:
        if (len(data) if data is not None else path.stat().st_size) == 0:
            raise ImageLoadError(FailureKind.BAD, "empty file (0 bytes)") from None
        raise ImageLoadError(
            FailureKind.BAD, "content is not an image format Pillow knows"
        ) from None
    except PermissionError as exc:
        raise ImageLoadError(FailureKind.BAD, f"cannot read: {exc.strerror or exc}") from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(FailureKind.BAD, f"too many pixels: {exc}") from None
    except Exception as exc:  # corrupt headers raise all sorts (SyntaxError, struct.error...)
        raise ImageLoadError(FailureKind.BAD, f"unreadable header: {_describe(exc)}") from None
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
    im: Image.Image,
    header: ImageHeader,
    *,
    reduce: int = 1,
    allow_truncated: bool = False,
    path: Path | bytes | None = None,
    rows: int | None = None,
) -> Image.Image:
    """Decode a lazily opened image to oriented 8-bit RGB, ``reduce`` times smaller (JPEG only).

    ``rows``: only the top ``rows`` rows (full-resolution, oriented) are needed; a
    baseline JPEG without orientation change then stops decoding there (the rows below
    are left blank). A truncated file raises ``ImageLoadError(TRUNCATED)`` unless
    ``allow_truncated``; ``path`` lets a truncated file be reopened to tell truncated
    from bad (the file's bytes, for an image read from a store).
    """
    full_height = im.size[1]
    if reduce > 1 and _is_jpeg(im):
        w, h = im.size
        im.draft("RGB", (math.ceil(w / reduce), math.ceil(h / reduce)))
    try:
        if rows is not None and rows < full_height and header.transpose is None and _partial_ok(im):
            _load_top_rows(im, min(im.size[1], math.ceil(rows * im.size[1] / full_height) + 1))
        else:
            im.load()
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(FailureKind.BAD, f"too many pixels: {exc}") from None
    except Exception as exc:
        im = _load_truncated(path, exc, allow_truncated, reduce)
    if header.transpose is not None:
        im = im.transpose(header.transpose)
    return to_rgb(im)


def _is_jpeg(im: Image.Image) -> bool:
    """JPEG or MPO (a JPEG with extra frames, written by some cameras)."""
    return isinstance(im, JpegImagePlugin.JpegImageFile)


def _partial_ok(im: Image.Image) -> bool:
    return (
        _is_jpeg(im)
        and not im.info.get("progressive")
        and not im.info.get("progression")
        and im.mode in _SENTINELS
    )


_SENTINELS = {"RGB": (1, 254, 3), "L": 253, "CMYK": (1, 254, 3, 252)}


def _load_top_rows(im: Image.Image, rows: int) -> None:
    """Decode a baseline JPEG only until row ``rows - 1`` is written, then stop reading.

    Pillow decodes whole rows from top to bottom between reads of the file; a few
    sentinel pixels planted in the last needed row tell when it has been written (a
    decoded pixel that happens to equal its sentinel only means decoding goes on).
    Rows above are exactly what a full decode gives.
    """
    sentinel = _SENTINELS[im.mode]
    y = rows - 1
    xs = sorted({0, im.size[0] // 2, im.size[0] - 1})
    fp = getattr(im, "fp", None)
    assert fp is not None
    armed = False

    def load_read(read_bytes: int) -> bytes:
        nonlocal armed
        core = im.im
        if not armed:
            for x in xs:
                core.putpixel((x, y), sentinel)
            armed = True
        elif any(core.getpixel((x, y)) != sentinel for x in xs):
            return b""  # every needed row is decoded: stop (LOAD_TRUNCATED_IMAGES ends the loop)
        data = fp.read(read_bytes)
        if not data:
            raise OSError("image file is truncated")
        return data

    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    im.load_read = load_read  # type: ignore[attr-defined]
    try:
        im.load()
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
        del im.load_read  # type: ignore[attr-defined]


def _load_truncated(
    path: Path | bytes | None, first: Exception, allow: bool, reduce: int
) -> Image.Image:
    if path is None:
        raise ImageLoadError(FailureKind.BAD, f"cannot decode: {_describe(first)}")
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        im = Image.open(io.BytesIO(path) if isinstance(path, bytes) else path)
        if reduce > 1 and _is_jpeg(im):
            im.draft("RGB", (math.ceil(im.size[0] / reduce), math.ceil(im.size[1] / reduce)))
        im.load()
    except Exception as exc:
        raise ImageLoadError(
            FailureKind.BAD,
            f"cannot decode: {_describe(first)} (also with truncated loading: {_describe(exc)})",
        ) from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
    if not allow:
        raise ImageLoadError(
            FailureKind.TRUNCATED,
            f"truncated or corrupt data ({_describe(first)}); --load-truncated crops what is there",
        )
    return im


def read_image(store: ImageStore, rel: str) -> bytes:
    """An image's bytes from an object store; a missing object or transport trouble
    (refused, reset, timed out) is an ``ImageLoadError``, like a bad local file."""
    if not is_image_name(rel):
        suffix = Path(rel).suffix
        raise ImageLoadError(
            FailureKind.NON_IMAGE, f"not an image file name ({suffix or 'no extension'})"
        )
    try:
        return store.read_bytes(rel)
    except FileNotFoundError:
        raise ImageLoadError(FailureKind.NONEXISTENT, "file not found") from None
    except OSError as exc:
        raise ImageLoadError(FailureKind.BAD, f"cannot read: {exc}") from None


def load_image(
    path: Path,
    *,
    exif: ExifMode = ExifMode.MEGADETECTOR,
    allow_truncated: bool = False,
    reduce: int = 1,
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
    except ImageLoadError as exc:
        return exc.kind.value, exc.reason
    return "good", ""


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
