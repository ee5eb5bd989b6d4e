"""Tell a CCT file from an MD JSON file by its top-level keys, without parsing it all."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

FileKind = Literal["cct", "md", "unknown"]


def sniff_kind(path: str | os.PathLike[str], *, head_bytes: int = 1 << 20) -> FileKind:
    """``"md"`` if the file mentions ``detection_categories`` near the top or ``"file"``
    keys in images, ``"cct"`` if it has ``annotations``/``file_name``, else ``"unknown"``."""
    with Path(path).open("rb") as fh:
        head = fh.read(head_bytes)
    if b'"detection_categories"' in head or b'"detections"' in head:
        return "md"
    if b'"annotations"' in head or b'"file_name"' in head:
        return "cct"
    if b'"file"' in head:
        return "md"
    return "unknown"
