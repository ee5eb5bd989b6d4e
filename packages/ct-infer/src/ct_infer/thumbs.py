"""Small JPEG thumbnails of crops, for the report and the review page.

A thumbnail is made from a crop file (or a box of a full image) at reduced size: the JPEG
is decoded in draft mode near the target size, so a thumbnail of a large photo costs a
fraction of a full decode. :class:`ThumbFolder` keeps them as files named by the source
path, made once and reused while the source is unchanged, and removes those no longer
used.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ct_io.atomic import write_bytes_atomic
from ct_io.paths import safe_join

log = logging.getLogger(__name__)

#: Longest side of a report thumbnail, in pixels.
THUMB_SIZE = 112
QUALITY = 80


def thumbnail_bytes(
    source: str | os.PathLike[str],
    size: int = THUMB_SIZE,
    bbox: Sequence[float] | None = None,
    quality: int = QUALITY,
) -> bytes:
    """A JPEG of ``source`` (or of its normalized ``[x, y, w, h]`` box) fitting ``size`` px.

    Raises OSError (or PIL's and ct-crop's errors) when the image or box gives no picture.
    """
    from PIL import Image

    with Image.open(source) as im:
        if bbox is None:
            im.draft("RGB", (size, size))
            rgb = im.convert("RGB")
        else:
            from ct_crop.render import crop_box

            rgb = crop_box(im.convert("RGB"), list(bbox), size=size, upscale=False)
    rgb.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


class ThumbFolder:
    """Thumbnails of crops under ``crops_dir``, kept in ``folder`` (``thumbs/`` of a report).

    :meth:`get` returns a thumbnail's path relative to ``folder.parent`` (what an
    ``<img src>`` beside ``folder`` needs), or None when the crop cannot be read.
    """

    def __init__(self, folder: Path, crops_dir: Path, size: int = THUMB_SIZE) -> None:
        self.folder, self.crops_dir, self.size = folder, crops_dir, size
        self.used: set[str] = set()
        self.made = 0
        self.failed: dict[str, str] = {}
        self._key = str(crops_dir.resolve())

    def name(self, rel: str) -> str:
        digest = hashlib.sha1(f"{self._key}\x1f{rel}\x1f{self.size}".encode()).hexdigest()
        return f"{digest[:20]}.jpg"

    def get(self, rel: str) -> str | None:
        name = self.name(rel)
        if rel in self.failed:
            return None
        target = self.folder / name
        try:
            source = safe_join(self.crops_dir, rel)
            if not (target.is_file() and target.stat().st_mtime >= source.stat().st_mtime):
                write_bytes_atomic(target, thumbnail_bytes(source, self.size))
                self.made += 1
        except Exception as exc:  # a missing or broken crop must not stop the report
            self.failed[rel] = str(exc)
            log.debug("no thumbnail of %s: %s", rel, exc)
            return None
        self.used.add(name)
        return f"{self.folder.name}/{name}"

    def remove_unused(self) -> int:
        """Delete thumbnails this build did not use (labels or crops that are gone)."""
        removed = 0
        if self.folder.is_dir():
            for path in self.folder.glob("*.jpg"):
                if path.name not in self.used:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed
