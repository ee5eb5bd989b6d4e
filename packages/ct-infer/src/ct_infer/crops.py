"""Crop names back to boxes.

Crop file names follow the shared convention (``a/b.jpg___crop00_<detector>.jpg`` for
detector box 0 of ``a/b.jpg``; no suffix for a ground-truth box; ct-crop writes them), so
a crop maps back to exactly one detection.
"""

from __future__ import annotations

import re

from attrs import frozen

from ct_crop.boxes import crop_name

__all__ = ["CropRef", "crop_name", "parse_crop_name"]

_CROP_RE = re.compile(
    r"^(?P<file>.+)___crop(?P<k>\d+)(?:_(?P<version>[^/]*?))?\.(?:jpg|jpeg|png)$", re.IGNORECASE
)


@frozen
class CropRef:
    """Which box of which image a crop is."""

    file: str
    index: int
    version: str | None = None


def parse_crop_name(name: str) -> CropRef | None:
    """The box a crop path names, or None when it does not follow the convention."""
    m = _CROP_RE.match(name.replace("\\", "/"))
    if not m:
        return None
    return CropRef(m["file"], int(m["k"]), m["version"] or None)
