"""``crops.csv`` (one row per crop) and ``crop_failures.csv`` (one row per problem).

Later steps read ``crops.csv`` instead of globbing the crops folder. Columns:

- ``crop``: crop path relative to the crops folder (``a/b.jpg___crop00_mdv5a.jpg``)
- ``image``: the source image, relative to the images folder
- ``box_index``: the box's index in the image's list (the ``NN`` of the name)
- ``source``: ``gt`` (ground truth) or ``detector``; ``detector``: its version or empty
- ``category``: the box's category name (species for ground truth, ``animal``...)
- ``confidence``: 1.0 for ground truth, the detector's confidence otherwise
- ``box_x, box_y, box_w, box_h``: the box (margin included) in whole pixels of the
  oriented full-resolution image, clipped to it
- ``crop_x, crop_y, crop_w, crop_h``: the image pixels the crop was cut from
- ``width, height``: the crop file's size in pixels
- ``image_width, image_height``: the oriented full-resolution image size

Both files are written atomically and sorted, so a resumed run writes the same bytes
as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ct_io.atomic import write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

MANIFEST_NAME = "crops.csv"
FAILURES_NAME = "crop_failures.csv"
MANIFEST_COLUMNS = (
    "crop",
    "image",
    "box_index",
    "source",
    "detector",
    "category",
    "confidence",
    "box_x",
    "box_y",
    "box_w",
    "box_h",
    "crop_x",
    "crop_y",
    "crop_w",
    "crop_h",
    "width",
    "height",
    "image_width",
    "image_height",
)
FAILURE_COLUMNS = ("image", "box_index", "kind", "reason")
_INT_COLUMNS = [c for c in MANIFEST_COLUMNS if c.startswith(("box_", "crop_", "width", "height", "image_w", "image_h"))]


def _csv_text(rows: Iterable[Mapping[str, Any]], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return buf.getvalue()


def sorted_rows(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Manifest rows in file order: by crop path."""
    return sorted(rows, key=lambda r: r["crop"])


def write_manifest(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> list[Mapping[str, Any]]:
    """Write ``crops.csv`` atomically, sorted by crop path; returns the rows written.

    Written with the csv module, not pandas: the cropper stays light to start.
    """
    ordered = sorted_rows(rows)
    write_text_atomic(path, _csv_text(ordered, MANIFEST_COLUMNS))
    return ordered


def read_manifest(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``crops.csv`` with its column types (paths and names as strings)."""
    from ct_io.tables import read_csv

    dtype = {c: str for c in ("crop", "image", "source", "detector", "category")}
    frame = read_csv(path, required=MANIFEST_COLUMNS, dtype=dtype)
    frame["detector"] = frame["detector"].fillna("")
    for col in _INT_COLUMNS:
        frame[col] = frame[col].astype("int64")
    return frame


def write_failures(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> list[Mapping[str, Any]]:
    """Write ``crop_failures.csv`` atomically (also when empty, replacing an older log).

    Sorted by image, image-level problems (empty ``box_index``) before box-level ones.
    """
    ordered = sorted(rows, key=lambda r: (r["image"], -1 if r.get("box_index") is None else r["box_index"], r["kind"]))
    write_text_atomic(path, _csv_text(ordered, FAILURE_COLUMNS))
    return ordered
